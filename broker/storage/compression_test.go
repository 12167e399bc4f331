package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The cleaner's codecs read what franz-go writes and write what franz-go
// reads, for every codec Kafka defines.
func TestCompressionAgreesWithFranzGo(t *testing.T) {
	var records []byte
	for i := range 2000 {
		records = append(records, fmt.Sprintf("record %d with some text to compress; ", i)...)
	}
	codecs := map[int]kgo.CompressionCodec{codecGzip: kgo.GzipCompression(), codecSnappy: kgo.SnappyCompression(),
		codecLZ4: kgo.Lz4Compression(), codecZstd: kgo.ZstdCompression()}
	decompressor := kgo.DefaultDecompressor()
	for codec, theirs := range codecs {
		compressor, err := kgo.DefaultCompressor(theirs)
		if err != nil {
			t.Fatal(err)
		}
		byThem, _ := compressor.Compress(new(bytes.Buffer), records)
		got, err := decompress(nil, byThem, codec)
		if err != nil || !bytes.Equal(got, records) {
			t.Fatalf("codec %d: decompressing franz-go's output: %v", codec, err)
		}
		byUs, err := compress(nil, records, codec)
		if err != nil {
			t.Fatal(err)
		}
		if len(byUs) >= len(records) {
			t.Fatalf("codec %d: %d bytes compressed to %d", codec, len(records), len(byUs))
		}
		back, err := decompressor.Decompress(byUs, kgo.CompressionCodecType(codec))
		if err != nil || !bytes.Equal(back, records) {
			t.Fatalf("codec %d: franz-go decompressing ours: %v", codec, err)
		}
		again, _ := compress(nil, records, codec)
		if !bytes.Equal(again, byUs) {
			t.Fatalf("codec %d: compressing the same records twice gave different bytes; replicas would differ", codec)
		}
	}
}

// A batch that decompresses past the bound is refused, whatever the codec,
// without the whole of it ever being held.
func TestDecompressionIsBounded(t *testing.T) {
	zeros := func(w io.Writer) {
		chunk := make([]byte, 1<<20)
		for range maxDecompressedRecords/len(chunk) + 1 {
			if _, err := w.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	var gz, lz bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zeros(gw)
	_ = gw.Close()
	lw := lz4.NewWriter(&lz)
	zeros(lw)
	_ = lw.Close()
	// snappy and zstd say their size up front, and are refused on that.
	snappy := append(binary.AppendUvarint(nil, maxDecompressedRecords+1), 0, 0)
	// A zstd frame header: magic, single segment with an 8-byte content
	// size, then one raw block of one byte.
	zstdFrame := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
	zstdFrame = append(zstdFrame, 0xE0)
	zstdFrame = binary.LittleEndian.AppendUint64(zstdFrame, maxDecompressedRecords+1)
	zstdFrame = append(zstdFrame, 0x09, 0, 0, 'x')
	bombs := map[int][]byte{codecGzip: gz.Bytes(), codecLZ4: lz.Bytes(), codecSnappy: snappy, codecZstd: zstdFrame}
	for codec, bomb := range bombs {
		if _, err := decompress(nil, bomb, codec); !errors.Is(err, errDecompressedTooLarge) {
			t.Fatalf("codec %d: %d bytes that decompress past %d: %v, want errDecompressedTooLarge", codec, len(bomb), maxDecompressedRecords, err)
		}
	}
	if _, err := decompress(nil, []byte{1, 2, 3}, 7); err == nil {
		t.Fatal("codec 7 decompressed")
	}
}
