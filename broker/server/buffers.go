package server

import "sync"

// Buffers for the two big byte streams, reused instead of allocated per
// request: produce request bodies (read from the socket, appended to the
// log, then free) and fetch reads (read from a segment, copied into the
// encoded response, then free). Buffers larger than maxPooledBuffer are
// left to the garbage collector, so one huge request cannot pin memory.
const maxPooledBuffer = 4 << 20

var bufferPool = sync.Pool{New: func() any { return new([]byte) }}

// getBuffer returns an empty buffer with at least size bytes of capacity.
func getBuffer(size int) *[]byte {
	buf := bufferPool.Get().(*[]byte)
	if cap(*buf) < size {
		*buf = make([]byte, 0, size)
	}
	*buf = (*buf)[:0]
	return buf
}

// putBuffer gives a buffer back; nothing may use it afterwards.
func putBuffer(buf *[]byte) {
	if cap(*buf) > maxPooledBuffer {
		return
	}
	*buf = (*buf)[:0]
	bufferPool.Put(buf)
}
