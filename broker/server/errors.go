package server

import (
	"errors"
	"os"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/storage"
)

// errorCode maps an error from the cluster or storage to Kafka's code. The
// cluster wraps kerr errors; storage has its own, mapped here.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var kafkaErr *kerr.Error
	switch {
	case errors.As(err, &kafkaErr):
		return kafkaErr.Code
	case errors.Is(err, storage.ErrCorruptMessage):
		return kerr.CorruptMessage.Code
	case errors.Is(err, storage.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, storage.ErrUnsupportedCompression):
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, storage.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, storage.ErrClosed), errors.Is(err, os.ErrClosed):
		// The log closed under the request: this broker stops or is no
		// longer a replica; the client asks the metadata where to go.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, storage.ErrLogOffline), errors.Is(err, storage.ErrLogCorrupt):
		return kerr.KafkaStorageError.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the message for a response's error_message field.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	msg := err.Error()
	return &msg
}
