package server

// ApiVersions (key 18), v0–v4.
//   v0: the supported range of each API key.
//   v1: throttle time.
//   v2: no change.
//   v3: flexible; the client's software name and version.
//   v4: no change (clients may expect UNSUPPORTED_VERSION handling).
// A request for a newer version than v4 is answered with the v0 layout,
// UNSUPPORTED_VERSION and the ranges, as Kafka does, so that clients
// (librdkafka) retry with a version we speak.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

func init() { register(apiVersionsKey, 0, 4, handleAPIVersions) }

func handleAPIVersions(c *conn, req kmsg.Request) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiVersionRanges()
	return resp, nil
}

func apiVersionRanges() []kmsg.ApiVersionsResponseApiKey {
	var ranges []kmsg.ApiVersionsResponseApiKey
	for _, h := range supportedKeys() {
		key := kmsg.NewApiVersionsResponseApiKey()
		key.ApiKey, key.MinVersion, key.MaxVersion = h.key, h.minVersion, h.maxVersion
		ranges = append(ranges, key)
	}
	return ranges
}

func unsupportedAPIVersionsResponse() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiVersionRanges()
	return resp
}
