// Package redisslot checks, without a cluster, that every Redis command Coupongate sends would run
// on a Redis Cluster: a command, Lua script or MULTI/EXEC transaction whose keys hash to more than
// one slot fails there with CROSSSLOT (asynq issues #480 and #1002 describe the trap). Slot
// computes a key's slot as Redis does; Recorder is a go-redis hook that records every command a
// client sends, and Check asks the server which of their arguments are keys (COMMAND GETKEYS,
// the same table Redis itself routes by) and reports each command or transaction whose keys
// lie in different slots. Tests run the code under test on a client with the hook.
package redisslot

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Slots is how many hash slots a Redis Cluster has.
const Slots = 16384

// Slot is key's hash slot: CRC16 (XMODEM) of the key modulo 16384, where a key holding a
// non-empty {…} hashes only what lies between its first { and the next }.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % Slots)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster uses.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Unit is one command, or the commands of one MULTI/EXEC transaction, as a client sent them.
type Unit struct {
	Cmds [][]any
}

// String shows the unit's commands with their arguments shortened.
func (u Unit) String() string {
	parts := make([]string, len(u.Cmds))
	for i, c := range u.Cmds {
		words := make([]string, 0, len(c))
		for _, a := range c {
			w := fmt.Sprint(a)
			if len(w) > 60 {
				w = w[:60] + "…"
			}
			words = append(words, w)
		}
		parts[i] = strings.Join(words, " ")
	}
	return strings.Join(parts, " ; ")
}

// Recorder is a go-redis hook recording every command and transaction sent through the clients
// it is added to (client.AddHook(recorder)).
type Recorder struct {
	mu    sync.Mutex
	units []Unit
}

var _ redis.Hook = (*Recorder)(nil)

// DialHook implements redis.Hook.
func (r *Recorder) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook implements redis.Hook: one command is one unit.
func (r *Recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add(Unit{Cmds: [][]any{cmd.Args()}})
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook: a transaction (MULTI … EXEC) is one unit, its keys
// must share a slot; each command of a plain pipeline is a unit of its own.
func (r *Recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "multi") {
			u := Unit{}
			for _, c := range cmds[1 : len(cmds)-1] {
				u.Cmds = append(u.Cmds, c.Args())
			}
			r.add(u)
		} else {
			for _, c := range cmds {
				r.add(Unit{Cmds: [][]any{c.Args()}})
			}
		}
		return next(ctx, cmds)
	}
}

func (r *Recorder) add(u Unit) {
	r.mu.Lock()
	r.units = append(r.units, u)
	r.mu.Unlock()
}

// Units are the units recorded so far.
func (r *Recorder) Units() []Unit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Unit(nil), r.units...)
}

// Finding is a unit whose keys lie in more than one slot.
type Finding struct {
	Unit  Unit
	Slots map[string]int // key → slot
}

// Keyed is what Check found: the units that touch keys, with their keys, and the findings.
type Keyed struct {
	Units    int            // units that named at least one key
	Keys     map[string]int // every key seen → its slot
	Findings []Finding
}

// Check asks the server behind admin which arguments of each recorded command are keys (COMMAND
// GETKEYS; a command with no key arguments is skipped) and returns every unit whose keys hash to
// more than one slot. admin must be a plain client of the same Redis version; it is not recorded.
func (r *Recorder) Check(ctx context.Context, admin redis.UniversalClient) (Keyed, error) {
	units := r.Units()
	out := Keyed{Keys: map[string]int{}}
	// Commands repeat (asynq polls its queues); each distinct one is asked about once, all in one
	// pipeline.
	keysOf := map[string][]string{}
	asked := map[string]*redis.Cmd{}
	pipe := admin.Pipeline()
	for _, u := range units {
		for _, c := range u.Cmds {
			id := fmt.Sprint(c...)
			if len(c) < 2 {
				continue // PING, MULTI, …: nothing that could be a key
			}
			if _, ok := asked[id]; !ok {
				asked[id] = pipe.Do(ctx, append([]any{"command", "getkeys"}, c...)...)
			}
		}
	}
	if len(asked) > 0 {
		_, _ = pipe.Exec(ctx) // each command's error is read from it below
	}
	for id, cmd := range asked {
		keys, err := cmd.StringSlice()
		if err != nil && !noKeys(err) {
			return out, fmt.Errorf("COMMAND GETKEYS %s: %w", id, err)
		}
		keysOf[id] = keys
	}
	for _, u := range units {
		slots := map[string]int{}
		for _, c := range u.Cmds {
			for _, k := range keysOf[fmt.Sprint(c...)] {
				slots[k] = Slot(k)
				out.Keys[k] = slots[k]
			}
		}
		if len(slots) == 0 {
			continue
		}
		out.Units++
		distinct := map[int]bool{}
		for _, s := range slots {
			distinct[s] = true
		}
		if len(distinct) > 1 {
			out.Findings = append(out.Findings, Finding{Unit: u, Slots: slots})
		}
	}
	return out, nil
}

// noKeys says whether COMMAND GETKEYS failed because the command names no keys (PING, HELLO,
// SCRIPT LOAD, CLIENT …) rather than for another reason.
func noKeys(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no key arguments") || strings.Contains(msg, "invalid arguments") ||
		strings.Contains(msg, "invalid command")
}
