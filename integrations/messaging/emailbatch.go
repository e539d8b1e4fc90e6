package messaging

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/textproto"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// maxBatchReconnects is how many times SendBatch opens a new connection after one broke, before
// it gives the emails still waiting the error.
const maxBatchReconnects = 2

// batchEmail is an email of a batch, built, with its place in the batch.
type batchEmail struct {
	i        int
	msg      *gomail.Msg
	from, to string
}

// SendBatch sends the emails one after the other over one connection of the pool, and returns one
// error per email in the order given, each what Send would have returned for it (nil: the server
// accepted it). With a server that offers PIPELINING (RFC 2920) the commands of an email go in
// one write, and with the content of the email before: one round trip an email instead of four.
// After an email the server refused part-way (MAIL or RCPT), RSET starts the next one clean. A
// connection that breaks is replaced and the emails not yet offered go on over the new one (an
// email whose answer was lost gets the network error, as Send gives it: it may have been taken).
// Each email gets the Mailer's timeout; ctx bounds them all.
func (m *Mailer) SendBatch(ctx context.Context, emails []Email) []error {
	errs := make([]error, len(emails))
	defer func() {
		for i := range errs {
			errs[i] = m.scrub(errs[i])
		}
	}()
	if m.err != nil {
		for i := range errs {
			errs[i] = m.err
		}
		return errs
	}
	pending := make([]batchEmail, 0, len(emails))
	for i, e := range emails {
		msg, from, to, err := m.build(e)
		if err != nil {
			errs[i] = err
			continue
		}
		pending = append(pending, batchEmail{i: i, msg: msg, from: from, to: to})
	}
	fail := func(err error) {
		for _, p := range pending {
			errs[p.i] = err
		}
	}
	if len(pending) == 0 {
		return errs
	}
	if ctx.Err() != nil {
		fail(ctxSendError(ChannelEmail, ctx.Err(), "before sending"))
		return errs
	}
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		fail(ctxSendError(ChannelEmail, ctx.Err(), "waiting for a connection"))
		return errs
	}
	defer func() { <-m.slots }()

	g := &connGuard{}
	stop := context.AfterFunc(ctx, g.fire)
	defer stop()

	for broken := 0; len(pending) > 0; {
		pc, reused, err := m.get(ctx, g)
		if err != nil {
			if ctx.Err() != nil {
				err = ctxSendError(ChannelEmail, ctx.Err(), "connecting")
			}
			fail(err)
			return errs
		}
		var res batchResult
		if ok, _ := pc.c.Extension("PIPELINING"); ok {
			res = m.pipeline(ctx, pc, pending, errs)
		} else {
			res = m.oneByOne(ctx, pc, pending, errs)
		}
		if g.fired() {
			// The context ended and closed the connection: what it cut off is a timeout, as in
			// Send; an email the server took stays taken.
			pc.close()
			for k, p := range pending {
				if k >= res.done || isConnError(errs[p.i]) {
					errs[p.i] = ctxSendError(ChannelEmail, ctx.Err(), "sending")
				}
			}
			return errs
		}
		if res.keep {
			m.put(pc)
		} else {
			pc.close()
		}
		pending = pending[res.done:]
		if len(pending) == 0 {
			break
		}
		// The connection broke or closed before the rest were offered: they go over a new one.
		// A pooled connection found dead at once costs no attempt (the server dropped it while
		// it was idle), as in Send.
		if !(res.stale && reused) {
			broken++
		}
		if broken > maxBatchReconnects {
			fail(res.err)
			return errs
		}
	}
	return errs
}

// batchResult is how far a batch got on one connection: the first done emails have their answer
// in errs; keep says the connection can carry more; stale that it was found dead before the
// first email was offered; err is what ended it, for the emails that never got through.
type batchResult struct {
	done  int
	keep  bool
	stale bool
	err   error
}

// oneByOne sends the emails with one transaction after the other (a server without PIPELINING).
func (m *Mailer) oneByOne(ctx context.Context, pc *smtpConn, pending []batchEmail, errs []error) batchResult {
	for k, p := range pending {
		res := m.transact(ctx, pc, p.msg, p.from, p.to)
		if res.stale {
			// Dead (or closing) before this email was offered: it goes over the next connection.
			return batchResult{done: k, stale: k == 0, err: res.err}
		}
		errs[p.i] = res.err
		if !res.keep {
			return batchResult{done: k + 1, err: res.err}
		}
	}
	return batchResult{done: len(pending), keep: true}
}

// isConnError reports a network failure or a timeout (no SMTP reply).
func isConnError(err error) bool {
	var se *SendError
	return errors.As(err, &se) && (se.Code == CodeNetwork || se.Code == CodeTimeout)
}

// pipeline sends the emails over pc with PIPELINING: the MAIL, RCPT and DATA of an email in one
// write and, once DATA is answered 354, its content with the next email's commands in one write;
// the answers are read in order. RSET goes before the commands of an email that follows a
// transaction the server refused part-way.
//
// An email is offered once its content is written: if the connection breaks after that, it gets
// the network error (its answer is lost: it may have been taken, as in Send); if it breaks before,
// the email and those after it are left for the next connection.
func (m *Mailer) pipeline(ctx context.Context, pc *smtpConn, pending []batchEmail, errs []error) batchResult {
	c := pc.c
	tw := c.Text
	var params string
	if ok, _ := c.Extension("8BITMIME"); ok {
		params += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		params += " SMTPUTF8"
	}
	deadline := func() error {
		t := m.timeout
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < t {
				t = left
			}
		}
		return c.UpdateDeadline(t)
	}
	commands := func(p batchEmail, rset bool) {
		if rset {
			_, _ = tw.W.WriteString("RSET\r\n")
		}
		_, _ = tw.W.WriteString("MAIL FROM:" + p.from + params + "\r\nRCPT TO:" + p.to + "\r\nDATA\r\n")
	}
	notOffered := func(k int, stage string, err error) batchResult {
		return batchResult{done: k, stale: k == 0, err: m.connError(stage, err)}
	}
	lost := func(k int, stage string, err error) batchResult {
		ce := m.connError(stage, err)
		errs[pending[k].i] = ce
		return batchResult{done: k + 1, err: ce}
	}
	var content bytes.Buffer
	cw := bufio.NewWriter(&content)
	dw := textproto.NewWriter(cw)

	if err := deadline(); err != nil {
		return notOffered(0, "MAIL FROM", err)
	}
	commands(pending[0], false)
	if err := tw.W.Flush(); err != nil {
		return notOffered(0, "MAIL FROM", err)
	}
	rset := false
	for k, p := range pending {
		if err := deadline(); err != nil {
			return notOffered(k, "MAIL FROM", err)
		}
		if rset {
			if _, _, err := tw.ReadResponse(250); err != nil {
				return notOffered(k, "RSET", err)
			}
		}
		_, _, mailErr := tw.ReadResponse(250)
		if mailErr != nil && !isReply(mailErr) {
			return notOffered(k, "MAIL FROM", mailErr)
		}
		_, _, rcptErr := tw.ReadResponse(25)
		if rcptErr != nil && !isReply(rcptErr) {
			return notOffered(k, "RCPT TO", rcptErr)
		}
		_, _, dataErr := tw.ReadResponse(354)
		if dataErr != nil && !isReply(dataErr) {
			return notOffered(k, "DATA", dataErr)
		}
		last := k == len(pending)-1
		if mailErr != nil || rcptErr != nil || dataErr != nil {
			switch {
			case mailErr != nil:
				errs[p.i] = replyError("MAIL FROM "+p.from, asReply(mailErr))
			case rcptErr != nil:
				errs[p.i] = replyError("RCPT TO "+p.to, asReply(rcptErr))
			default:
				errs[p.i] = replyError("DATA", asReply(dataErr))
			}
			if closing(mailErr, rcptErr, dataErr) {
				return batchResult{done: k + 1, err: errs[p.i]}
			}
			if dataErr == nil {
				// DATA was taken although the envelope was refused: an empty content ends it.
				_, _ = tw.W.WriteString(".\r\n")
				if err := tw.W.Flush(); err != nil {
					return batchResult{done: k + 1, err: m.connError("end of DATA", err)}
				}
				if _, _, err := tw.ReadResponse(250); err != nil && !isReply(err) {
					return batchResult{done: k + 1, err: m.connError("end of DATA", err)}
				}
			}
			if last {
				return batchResult{done: k + 1, keep: c.Reset() == nil}
			}
			commands(pending[k+1], true)
			rset = true
			if err := tw.W.Flush(); err != nil {
				return notOffered(k+1, "RSET", err)
			}
			continue
		}
		rset = false
		content.Reset()
		cw.Reset(&content)
		w := dw.DotWriter()
		if _, err := p.msg.WriteTo(w); err != nil {
			return lost(k, "writing the message", err)
		}
		_ = w.Close() // ends the content with CRLF.CRLF, into content
		_, _ = tw.W.Write(content.Bytes())
		if !last {
			commands(pending[k+1], false)
		}
		if err := tw.W.Flush(); err != nil {
			return lost(k, "writing the message", err)
		}
		if _, _, err := tw.ReadResponse(250); err != nil {
			if !isReply(err) {
				return lost(k, "end of DATA", err)
			}
			tp := asReply(err)
			errs[p.i] = replyError("end of DATA", tp)
			if tp.Code == 421 {
				return batchResult{done: k + 1, err: errs[p.i]}
			}
		}
	}
	return batchResult{done: len(pending), keep: true}
}

// isReply reports whether err is an SMTP reply (the server answered, with an unexpected code).
func isReply(err error) bool { return asReply(err) != nil }

// asReply is err as an SMTP reply, nil when it is not one.
func asReply(err error) *textproto.Error {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp
	}
	return nil
}

// closing reports whether any of the replies is 421: the server is closing the connection.
func closing(errs ...error) bool {
	for _, err := range errs {
		var tp *textproto.Error
		if errors.As(err, &tp) && tp.Code == 421 {
			return true
		}
	}
	return false
}
