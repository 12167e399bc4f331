package server

// DeleteTopics (key 20), v0–v6.
//   v1: throttle time.
//   v4: flexible.
//   v5: error messages.
//   v6: topics by name or id.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(20, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	cl := c.server.cluster
	requested := r.Topics
	if r.Version < 6 {
		for _, name := range r.TopicNames {
			name := name
			requested = append(requested, kmsg.DeleteTopicsRequestTopic{Topic: &name})
		}
	}
	for _, rt := range requested {
		topic := kmsg.NewDeleteTopicsResponseTopic()
		topic.Topic, topic.TopicID = rt.Topic, rt.TopicID
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		} else if t, ok := cl.TopicByID(rt.TopicID); ok {
			name = t.Name
			topic.Topic = &t.Name
		} else {
			topic.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, topic)
			continue
		}
		if t, ok := cl.Topic(name); ok {
			topic.TopicID = t.ID
		}
		if err := cl.DeleteTopic(name); err != nil {
			topic.ErrorCode = errorCode(err)
			topic.ErrorMessage = errorMessage(err)
		} else {
			c.logger.Info("topic deleted by request", "topic", name, "client_id", c.currentClientID())
			c.server.metrics.TopicDeleted(name)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}
