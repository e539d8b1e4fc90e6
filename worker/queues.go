package worker

// This file spreads the hot task types over several asynq queues. asynq keeps all keys of a queue
// under one hash tag (asynq:{name}:…), so on a Redis Cluster one queue lives whole on one node and
// every task of it, queued, dequeued or finished, is a script on that node. Platform webhook
// batches and message sends, the tasks that come by the thousand, go to queues of their own,
// sharded, so that their load lands on several nodes; the rest keeps the three queues it had.

import (
	"hash/fnv"
	"strconv"

	"github.com/google/uuid"
)

// Queue name prefixes and shard counts of the sharded queues: webhooks-0 … webhooks-3 hold
// merchants' platform webhook batches (by merchant), sends-0 … sends-3 message sends and send
// batches (by delivery or batch). Names carry no braces: asynq puts the name inside its own hash
// tag, and a brace in it would change the tag (asynq issue #480).
const (
	queueWebhooksPrefix = "webhooks-"
	queueSendsPrefix    = "sends-"
	webhookQueueShards  = 4
	sendQueueShards     = 4
)

// WebhookQueue is the queue of the merchant's platform webhook batches: one of the webhooks-N
// queues, always the same for a merchant (its task ids are looked up in it).
func WebhookQueue(merchantID uuid.UUID) string {
	return queueWebhooksPrefix + strconv.Itoa(shard(merchantID.String(), webhookQueueShards))
}

// SendQueue is the queue of the send task named id: one of the sends-N queues, always the same
// for an id.
func SendQueue(id string) string {
	return queueSendsPrefix + strconv.Itoa(shard(id, sendQueueShards))
}

// shard is key's bucket among n (FNV-1a).
func shard(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Queues are the queues a worker serves and their weights: a worker with a free slot tries them
// in a random order drawn by weight. The shares stay those of the three queues before the hot
// types moved out of default: about 60 % for default with the webhook and send shards, 30 % for
// bulk (imports, generation, pushes, bulk sends) and 10 % for maintenance.
func Queues() map[string]int { return PrefixedQueues("") }

// PrefixedQueues are Queues with prefix (QUEUE_PREFIX) before every name: the queues of an
// installation that names its queues apart from the others' on the same Redis.
func PrefixedQueues(prefix string) map[string]int {
	q := map[string]int{prefix + QueueDefault: 4, prefix + QueueBulk: 10, prefix + QueueMaintenance: 3}
	for i := range webhookQueueShards {
		q[prefix+queueWebhooksPrefix+strconv.Itoa(i)] = 2
	}
	for i := range sendQueueShards {
		q[prefix+queueSendsPrefix+strconv.Itoa(i)] = 2
	}
	return q
}
