package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The compression codecs of a batch's attributes. Appends store compressed
// batches as they came; only the cleaner, which must see every record's
// key, decompresses a batch, and it compresses the records it keeps again
// with the batch's own codec, as Kafka's cleaner does.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// maxDecompressedRecords bounds what one batch may decompress to, whatever
// its compressed size claims, so a crafted batch cannot make the broker
// allocate without limit. A batch that would grow past it is refused at
// append on a compacted log and kept as it is by the cleaner.
const maxDecompressedRecords = 64 << 20

// errDecompressedTooLarge: the batch decompresses to more than
// maxDecompressedRecords.
var errDecompressedTooLarge = fmt.Errorf("records decompress to more than %d bytes", maxDecompressedRecords)

// xerialMagic starts snappy data framed the way the Java client's
// snappy-java stream writes it: magic, version 1, compatible version 1, then
// blocks of a big-endian length and a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialBlockSize = 32 << 10

// decompress appends the decompressed form of src, a batch's records
// compressed with codec, to dst.
func decompress(dst, src []byte, codec int) ([]byte, error) {
	switch codec {
	case codecGzip:
		r, _ := gzipReaders.Get().(*gzip.Reader)
		if r == nil {
			r = new(gzip.Reader)
		}
		defer gzipReaders.Put(r)
		if err := r.Reset(bytes.NewReader(src)); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return readBounded(dst, r)
	case codecSnappy:
		return decompressSnappy(dst, src)
	case codecLZ4:
		r := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(r)
		r.Reset(bytes.NewReader(src))
		return readBounded(dst, r)
	case codecZstd:
		out, err := zstdDecoder().DecodeAll(src, dst)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, errDecompressedTooLarge
		}
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("compression codec %d is not defined", codec)
}

// readBounded appends everything r gives to dst, refusing more than
// maxDecompressedRecords.
func readBounded(dst []byte, r io.Reader) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(r, maxDecompressedRecords+1))
	if err != nil {
		return nil, err
	}
	if n > maxDecompressedRecords {
		return nil, errDecompressedTooLarge
	}
	return buf.Bytes(), nil
}

func decompressSnappy(dst, src []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return decodeSnappyBlock(dst, src)
	}
	if len(src) < 16 {
		return nil, errors.New("snappy: truncated xerial header")
	}
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errors.New("snappy: truncated xerial block length")
		}
		size := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(size) > uint64(len(rest)) {
			return nil, fmt.Errorf("snappy: xerial block of %d bytes runs past the %d left", size, len(rest))
		}
		var err error
		if dst, err = decodeSnappyBlock(dst, rest[:size]); err != nil {
			return nil, err
		}
		rest = rest[size:]
	}
	return dst, nil
}

// decodeSnappyBlock appends one raw snappy block to dst, checking its
// claimed length against the bound before allocating.
func decodeSnappyBlock(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	if len(dst)+n > maxDecompressedRecords {
		return nil, errDecompressedTooLarge
	}
	start := len(dst)
	dst = growBy(dst, n)
	if _, err := s2.Decode(dst[start:], block); err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	return dst, nil
}

// compress appends src compressed with codec to dst. The output depends
// only on src and codec, so replicas that keep the same records write the
// same bytes.
func compress(dst, src []byte, codec int) ([]byte, error) {
	switch codec {
	case codecGzip:
		buf := bytes.NewBuffer(dst)
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case codecSnappy:
		dst = append(dst, xerialMagic...)
		dst = binary.BigEndian.AppendUint32(dst, 1) // version
		dst = binary.BigEndian.AppendUint32(dst, 1) // compatible version
		for len(src) > 0 {
			n := min(len(src), xerialBlockSize)
			at := len(dst)
			dst = growBy(dst, 4+s2.MaxEncodedLen(n))
			block := s2.EncodeSnappy(dst[at+4:], src[:n])
			binary.BigEndian.PutUint32(dst[at:], uint32(len(block)))
			dst = dst[:at+4+len(block)]
			src = src[n:]
		}
		return dst, nil
	case codecLZ4:
		buf := bytes.NewBuffer(dst)
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case codecZstd:
		return zstdEncoder().EncodeAll(src, dst), nil
	}
	return nil, fmt.Errorf("compression codec %d is not defined", codec)
}

// Coders are costly to make (lz4's hold a block, gzip's a window), so they
// are reused. lz4 frames are written in 64 KiB blocks, as the Java client
// writes them. The zstd coder and decoder are safe for concurrent EncodeAll
// and DecodeAll calls; one each serves the process.
var (
	gzipReaders = sync.Pool{}
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	lz4Writers  = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			panic(err) // only invalid options fail
		}
		return w
	}}

	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(maxDecompressedRecords))
		if err != nil {
			panic(err) // only invalid options fail
		}
		return d
	})
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10), zstd.WithZeroFrames(true))
		if err != nil {
			panic(err)
		}
		return e
	})
)
