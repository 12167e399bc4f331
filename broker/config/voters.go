package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Voter is a member of the metadata quorum: node id and controller
// address.
type Voter struct {
	ID   int32
	Addr string
}

// ParseVoters reads Kafka's controller.quorum.voters form,
// "1@host:port,2@host:port,3@host:port"; empty is none.
func ParseVoters(text string) ([]Voter, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var voters []Voter
	seen := map[int32]bool{}
	for _, item := range strings.Split(text, ",") {
		idText, addr, ok := strings.Cut(strings.TrimSpace(item), "@")
		id, err := strconv.ParseInt(idText, 10, 32)
		if _, _, addrErr := net.SplitHostPort(addr); !ok || err != nil || id < 0 || addrErr != nil {
			return nil, fmt.Errorf("entry %q: want id@host:port, e.g. 1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095", item)
		}
		if seen[int32(id)] {
			return nil, fmt.Errorf("voter id %d is listed twice", id)
		}
		seen[int32(id)] = true
		voters = append(voters, Voter{ID: int32(id), Addr: addr})
	}
	return voters, nil
}
