// Package diskqueue is the durable queue for pushed telemetry: receivers (OTLP, Sentry)
// Append each accepted request before they answer their client, and an exporter pump
// reads entries back with Next, exports them and Acks them. Payloads are opaque
// bytes; the caller encodes them. One Queue owns one directory (the agent opens one
// per signal: data_dir/queue/traces, data_dir/queue/logs), which it locks with flock
// on the file LOCK, so a second Queue on the same directory, in this process or
// another, fails to open.
//
// # On-disk format
//
// The directory holds segment files named by a 20-digit, increasing number
// (00000000000000000001.seg), a cursor file, a processing file, LOCK, and the
// quarantine directory once an entry has been set aside (see Quarantine below). Files are 0600, the
// directory 0700. All integers are little-endian; checksums are CRC-32C
// (Castagnoli), stored masked as in LevelDB (rotated right by 15 bits plus
// 0xa282ead8), so that a zero-filled region never checks as a valid record.
//
// A segment starts with a 16-byte header:
//
//	magic "OQSG" | version (1 byte, 1) | 3 zero bytes | segment_size of the writer (uint32) | masked CRC-32C of the first 12 bytes
//
// followed by records:
//
//	payload length (uint32) | masked CRC-32C of the payload (uint32) | payload
//
// A writer starts a new segment when the next record would take the current one
// past segment_size, so the largest payload is segment_size minus 24 bytes. Each
// record is written with one write call (pwrite) of frame and payload; a failed write
// is cut off again with ftruncate. After Open the queue always writes into a new
// segment: it never appends to a file of an earlier run, whose tail may be torn.
//
// The cursor file (24 bytes: "OQCR", segment number, offset, masked CRC-32C of the
// first 20) holds the acknowledged frontier: the position of the first entry not yet
// acknowledged. It is replaced atomically (temporary file, fsync, rename, fsync of the
// directory). Segments wholly before the frontier are deleted, at once while running
// and at Open for anything a crash left behind.
//
// The processing file (24 bytes: "OP", segment number, offset, a uint16 count of
// runs, masked CRC-32C of the first 20) names the entry the consumer is processing
// between Begin and End, and is zeroed by End. It is written in place without fsync:
// it serves against process crashes, after which the page cache still holds it. A
// missing or damaged file counts as empty.
//
// # Reading and damage
//
// Next reads segments in order through a 64 KiB buffer (from the page cache; a
// payload larger than what the buffer holds is read straight into its own memory),
// never past the writer's published length of the segment being written; the queue
// keeps no entries in memory, only 32 bytes of bookkeeping per entry handed out and
// not yet acknowledged. Payloads are read into buffers that the consumer may hand
// back with Release once nothing reads them (see payload.go). A record's length is checked against the
// segment's header and the bytes left in the file before anything is allocated. A bad
// header, an impossible length or a checksum mismatch is counted in
// outrider_queue_corrupt_total{reason="header"|"length"|"checksum"}, logged once as a
// warning with the file and offset, and the rest of that segment is skipped; the
// following segments are still delivered. A segment that ends inside a record (the
// process died in the middle of a write) is reason "truncated", logged at info;
// a segment file deleted from under the queue is reason "missing".
//
// # Durability
//
// When Append returns nil the entry is in a segment file. What survives depends on
// fsync:
//
//   - "always": Append returns after an fsync covering the entry; concurrent appenders
//     share one fsync (group commit). Entries survive a machine crash or power loss.
//   - "interval" (the default): a background goroutine fsyncs every fsync_interval.
//     Entries survive the process being killed (they are in the page cache); a machine
//     crash loses at most the last fsync_interval of appends.
//
// In every mode an fsync round skips a segment rotated out whose entries are all
// acknowledged, and so deleted: nothing in it still needs to survive, and a queue
// that keeps up deletes most segments before a round reaches them (fsyncing them
// anyway would write everything passing through to disk).
//   - "never": the operating system writes back when it likes; entries survive the
//     process being killed, a machine crash may lose any unsynced entry.
//
// Close fsyncs in every mode.
//
// # Delivery: at least once
//
// Every appended entry is handed out by Next until it is acknowledged; nothing is
// dropped silently (ErrFull refuses new entries instead, damage is counted, and
// quarantined entries are kept aside). After
// a restart, Next hands out again every entry at or after the saved cursor, the first
// entry not acknowledged. The cursor is saved at most 150 ms after acknowledgements
// move the frontier, and by Close. So the entries delivered again are:
//
//   - after Close: those acknowledged out of order behind an entry still
//     unacknowledged at Close;
//   - after a crash (SIGKILL, power loss): in addition, those acknowledged in the last
//     150 ms plus the duration of one cursor write (an atomic replace with two fsyncs)
//     before the crash, unless their whole segment was already deleted. (After a
//     power loss, a deleted segment the file system brings back may also have lost
//     its unsynced contents; the reader counts that as damage, and every entry it
//     held had been acknowledged.)
//
// With fsync "interval" or "never", a machine crash (not a process crash) can also
// lose entries appended since the last fsync, as said above.
//
// # Quarantine
//
// An entry its consumer cannot process (it does not decode, or processing it
// panicked) would otherwise be handed out again after every restart, and stop or
// crash the consumer each time. The consumer passes it to Quarantine instead, which:
//
//  1. deletes the oldest quarantined entries (lowest segment, then offset) until the
//     new one fits in quarantine_max_size;
//  2. writes the payload, byte for byte, to quarantine/<segment>-<offset>.entry and a
//     text note (queue, entry, time, size, reason) to <segment>-<offset>.reason, both
//     20-digit numbers, each file replaced atomically (temporary file, fsync, rename,
//     fsync of the directory; with fsync "never", without the fsyncs);
//  3. counts the entry in outrider_queue_quarantined_total and logs it once, at
//     error level, with its ID and reason;
//  4. acknowledges it, so the frontier moves past it as for a delivered entry.
//
// An entry larger than quarantine_max_size, or one whose copy cannot be written (a
// full disk), is still counted, logged and acknowledged: a copy is worth less than
// the entries behind it. A crash between steps 2 and the cursor save hands the entry
// out again; quarantining it again replaces the same two files. Files in quarantine/
// are never read back; temporary files left by a crash are deleted at the next
// Quarantine. outrider_queue_quarantine_bytes is the size of the directory.
//
// Some failures are no panic a consumer can recover from: a stack overflow, running
// out of memory, an OOM kill. Begin and End bracket processing so the next run can
// tell: Open reads the processing file, and Begin of the entry named there returns how
// many runs in a row stopped while processing it (1 after one such stop, 2 after two
// in a row). The consumer quarantines an entry without processing it once that count
// reaches its limit, so a crash on one entry repeats a bounded number of times.
package diskqueue
