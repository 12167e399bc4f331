package server

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler answers one request. A nil response sends nothing (acks=0
// produce). An error means the connection is broken: it is logged and the
// connection is closed.
type handler func(c *conn, req kmsg.Request) (kmsg.Response, error)

// apiHandler is a registered API: the versions it implements and its handler.
type apiHandler struct {
	key, minVersion, maxVersion int16
	handle                      handler
}

// handlers is filled by the init function of each API file; ApiVersions is
// built from it, so it never advertises what no handler implements.
var handlers = map[int16]apiHandler{}

// register declares that key is implemented for versions min..max.
func register(key, minVersion, maxVersion int16, h handler) {
	if _, dup := handlers[key]; dup {
		panic("server: API key registered twice")
	}
	if kmsg.RequestForKey(key) == nil || maxVersion > kmsg.RequestForKey(key).MaxVersion() {
		panic("server: kmsg cannot decode the versions a handler claims")
	}
	handlers[key] = apiHandler{key: key, minVersion: minVersion, maxVersion: maxVersion, handle: h}
}

// supportedKeys lists the registered APIs by key.
func supportedKeys() []apiHandler {
	keys := make([]apiHandler, 0, len(handlers))
	for _, h := range handlers {
		keys = append(keys, h)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].key < keys[j].key })
	return keys
}
