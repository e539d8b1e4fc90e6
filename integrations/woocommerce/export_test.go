package woocommerce

// BatchItem is one item of a batch answer as the client reads it, for tests.
type BatchItem struct {
	ID        int64
	Code      string
	ErrCode   string
	ErrStatus int
	HasErr    bool
}

func itemsOf(ws []wireBatchItem) []BatchItem {
	out := make([]BatchItem, len(ws))
	for i, w := range ws {
		out[i] = BatchItem{ID: int64(w.ID), Code: string(w.Code)}
		if w.Error != nil {
			out[i].HasErr, out[i].ErrCode, out[i].ErrStatus = true, w.Error.Code, int(w.Error.Data.Status)
		}
	}
	return out
}

// ScanBatchAnswer reads raw with the batch answer's scanner alone (ok false when it leaves the
// answer to encoding/json).
func ScanBatchAnswer(raw []byte) (create, del []BatchItem, ok bool) {
	var a batchAnswer
	if a.scan(raw) != nil {
		return nil, nil, false
	}
	return itemsOf(a.Create), itemsOf(a.Delete), true
}

// DecodeBatchAnswerJSON reads raw with encoding/json alone, as the client read every answer
// before the scanner.
func DecodeBatchAnswerJSON(raw []byte) (create, del []BatchItem, err error) {
	var a batchAnswer
	if err := decodeLenient(raw, &a); err != nil {
		return nil, nil, err
	}
	return itemsOf(a.Create), itemsOf(a.Delete), nil
}

// DecodeBatchAnswer reads raw as BatchCoupons does: the scanner, else encoding/json.
func DecodeBatchAnswer(raw []byte) (create, del []BatchItem, err error) {
	var a batchAnswer
	if err := a.decodeAnswer(raw); err != nil {
		return nil, nil, err
	}
	return itemsOf(a.Create), itemsOf(a.Delete), nil
}
