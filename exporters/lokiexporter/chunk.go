package lokiexporter

import "github.com/outrider-dev/outrider/pipeline"

// chunk is the Sender's item: a run of the records of one source batch, not a copy of
// them. A batch belongs to the exporter until its acknowledgement (pipeline.Batch),
// so requests refer to the source's records instead of copying each into a request of
// their own: the records a backlog has in flight are then held (and scanned by the
// garbage collector) once, and nothing is copied per record on the way to the
// encoder.
type chunk struct {
	recs  []pipeline.Record
	bytes int // the records' sizes (pipeline.Record.Size) summed
}

// maxChunkRecords bounds a chunk, so that requests, cut between chunks, stay close
// to max_bytes; a chunk also holds at most a sixteenth of max_bytes (or one record).
const maxChunkRecords = 64

func chunkBytes(c *chunk) int   { return c.bytes }
func chunkRecords(c *chunk) int { return len(c.recs) }

// appendChunks appends to dst the chunks recs cut into, each of at most
// maxChunkRecords records and, unless it holds one record, maxBytes bytes.
func appendChunks(dst []chunk, recs []pipeline.Record, maxBytes int) []chunk {
	start, bytes := 0, 0
	for i := range recs {
		s := recs[i].Size()
		if i > start && (i-start == maxChunkRecords || bytes+s > maxBytes) {
			dst = append(dst, chunk{recs: recs[start:i:i], bytes: bytes})
			start, bytes = i, 0
		}
		bytes += s
	}
	if start < len(recs) {
		dst = append(dst, chunk{recs: recs[start:len(recs):len(recs)], bytes: bytes})
	}
	return dst
}

// countRecords returns the records chunks hold.
func countRecords(chunks []chunk) int {
	n := 0
	for i := range chunks {
		n += len(chunks[i].recs)
	}
	return n
}

// recordCursor finds a record of a request by its index among all of the request's
// records, the chunks taken in order. Indexes asked for in increasing order cost a
// step each; a smaller one than the last starts again from the first chunk.
type recordCursor struct {
	c, base int
}

func (cur *recordCursor) at(chunks []chunk, j int) *pipeline.Record {
	if j < cur.base {
		cur.c, cur.base = 0, 0
	}
	for j >= cur.base+len(chunks[cur.c].recs) {
		cur.base += len(chunks[cur.c].recs)
		cur.c++
	}
	return &chunks[cur.c].recs[j-cur.base]
}
