package event

import "encoding/json"

func jsonOf(e Event) ([]byte, error) { return json.Marshal(e) }
