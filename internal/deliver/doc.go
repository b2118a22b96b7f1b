// Package deliver is timd's live delivery: the Hub holds every client
// WebSocket (GET /v1/connect), indexed per app by account ordinal, and
// sends each push to the connections of its audience as one JSON text
// frame. It also catches reconnecting clients up on the stored pushes they
// have not acknowledged, batches their acks and clicks into the task store,
// and answers presence (service.Presence: Online, Kick).
//
// Guarantees and bounds:
//
//   - Deliver never blocks on a client. Each connection has a bounded send
//     queue (Options.QueueSize); a live frame that does not fit closes the
//     connection with 1008 "slow consumer", and the drop is counted.
//     Nothing is buffered without bound: catch-up frames are written
//     directly, paced by the client — one per push, or, on a connection
//     that asked for batch=1, one pushes message per page (at most
//     MaxPushesBytes unless a single push is larger).
//   - Every stored push reaches every connected recipient, once per
//     connection, and until the connection's caughtup frame in Seq order:
//     a connection is registered before its catch-up reads the store, a
//     stored push fanned out to it while it catches up is left to the
//     catch-up (which reads on until it has found every such push), and
//     one fanned out later reaches it live. Online-only pushes are sent at
//     once, catching up or not. Clients drop repeats (across connections)
//     by TaskId and resume from the caughtup frame's Seq.
//   - A connection that does not answer a ping within PongTimeout (pings
//     start a full PingInterval after its catch-up ended), sends a
//     frame over ReadLimit (1009), a binary frame (1003) or a malformed one
//     (1008) is closed; a fast sender is read at most FrameRate frames per
//     second. Kick closes with 4001, Stop with 1001.
//   - Acks (single or batched, up to MaxAckIDs TaskIds a frame) and
//     clicks count only for tasks whose audience holds the
//     connection's ordinal, and reach the store about every AckInterval
//     (and at Stop), one RecordAcks call per task.
//
// The frames are documented in docs/client-api.md.
package deliver
