// Package console is kqbroker's web console, served on the admin port and
// embedded in the binary: an overview with throughput over the last
// minutes, the brokers (fenced ones, the controller) and every partition
// with its leader, replicas and ISR, under-replicated and offline ones
// highlighted, topics with their partitions, configs and a message browser,
// consumer groups with lag per partition over time and offset resets, and
// a create-topic form. Its JSON API (/api/...) is a Kafka client of the
// broker it runs in (package ops), so it shows what clients see.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/ops"
)

//go:embed static
var static embed.FS

// historyLength samples are kept: 10 minutes at one sample per 5 seconds.
const historyLength = 120

// Console serves the pages and the API, and samples throughput and lag.
type Console struct {
	client *ops.Client
	mux    *http.ServeMux
	stop   context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	throughput []Sample               // records produced per second, cluster-wide
	lag        map[string][]LagSample // per group
	lastTotal  int64
	lastAt     time.Time
}

// Sample is a point of a chart.
type Sample struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// LagSample is a group's lag at one time: in all, and per partition
// ("topic-partition").
type LagSample struct {
	At         time.Time        `json:"at"`
	Value      float64          `json:"value"`
	Partitions map[string]int64 `json:"partitions"`
}

// New makes a console for the broker at bootstrap, sampling every interval.
func New(bootstrap string, interval time.Duration) (*Console, error) {
	client, err := ops.Dial(bootstrap)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Console{client: client, mux: http.NewServeMux(), stop: cancel, done: make(chan struct{}), lag: map[string][]LagSample{}}
	pages, _ := fs.Sub(static, "static")
	c.mux.Handle("GET /", http.FileServerFS(pages))
	c.mux.HandleFunc("GET /api/overview", c.overview)
	c.mux.HandleFunc("GET /api/cluster", c.cluster)
	c.mux.HandleFunc("GET /api/topics", c.topics)
	c.mux.HandleFunc("POST /api/topics", c.createTopic)
	c.mux.HandleFunc("GET /api/topics/{name}", c.topic)
	c.mux.HandleFunc("GET /api/topics/{name}/messages", c.messages)
	c.mux.HandleFunc("GET /api/groups", c.groups)
	c.mux.HandleFunc("GET /api/groups/{id}", c.group)
	c.mux.HandleFunc("POST /api/groups/{id}/reset", c.resetGroup)
	go c.sampleEvery(ctx, interval)
	return c, nil
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// Close stops sampling and closes the client.
func (c *Console) Close() {
	c.stop()
	<-c.done
	c.client.Close()
}

func (c *Console) sampleEvery(ctx context.Context, interval time.Duration) {
	defer close(c.done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		c.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// sample records the cluster's produce rate and every group's lag.
func (c *Console) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now()
	if topics, err := c.client.Topics(ctx); err == nil {
		var total int64
		for _, t := range topics {
			if !t.Internal {
				total += t.Records
			}
		}
		c.mu.Lock()
		if !c.lastAt.IsZero() {
			rate := float64(max(total-c.lastTotal, 0)) / now.Sub(c.lastAt).Seconds()
			c.throughput = appendSample(c.throughput, Sample{At: now, Value: rate})
		}
		c.lastTotal, c.lastAt = total, now
		c.mu.Unlock()
	}
	groups, err := c.client.Groups(ctx)
	if err != nil {
		return
	}
	for _, g := range groups {
		detail, err := c.client.Group(ctx, g.Group)
		if err != nil {
			continue
		}
		sample := LagSample{At: now, Value: float64(detail.Lag), Partitions: map[string]int64{}}
		for _, p := range detail.Partitions {
			sample.Partitions[p.Topic+"-"+strconv.Itoa(int(p.Partition))] = p.Lag
		}
		c.mu.Lock()
		c.lag[g.Group] = appendSample(c.lag[g.Group], sample)
		c.mu.Unlock()
	}
}

// appendSample adds s and keeps the last historyLength samples.
func appendSample[S any](samples []S, s S) []S {
	samples = append(samples, s)
	if len(samples) > historyLength {
		samples = samples[len(samples)-historyLength:]
	}
	return samples
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	cluster, err := c.client.Cluster(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	topics, err := c.client.Topics(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	var size, records int64
	for _, t := range topics {
		if !t.Internal {
			size += max(t.SizeBytes, 0)
			records += t.Records
		}
	}
	c.mu.Lock()
	throughput := append([]Sample{}, c.throughput...)
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster": cluster, "size_bytes": size, "records": records, "throughput": throughput,
	})
}

func (c *Console) topics(w http.ResponseWriter, r *http.Request) {
	topics, err := c.client.Topics(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, topics)
}

func (c *Console) topic(w http.ResponseWriter, r *http.Request) {
	detail, err := c.client.Topic(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, detail)
}

// createTopicRequest is the create form's body.
type createTopicRequest struct {
	Name        string            `json:"name"`
	Partitions  int32             `json:"partitions"`
	Replication int16             `json:"replication"`
	Configs     map[string]string `json:"configs"`
}

// readForm reads a change's JSON body into v, answering the error itself
// when it cannot. Only JSON is accepted: browsers send JSON to another
// origin only after a CORS preflight, which this server never answers, so
// a web page elsewhere cannot make a user's browser create topics or reset
// offsets on a broker it can reach (CSRF).
func readForm(w http.ResponseWriter, r *http.Request, v any) bool {
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send the request body as JSON, with Content-Type: application/json"})
		return false
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the form could not be read: " + err.Error()})
		return false
	}
	return true
}

func (c *Console) createTopic(w http.ResponseWriter, r *http.Request) {
	var req createTopicRequest
	if !readForm(w, r, &req) {
		return
	}
	if err := ops.ValidTopicName(req.Name); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error(), "field": "name"})
		return
	}
	if req.Partitions < 1 || req.Partitions > 10000 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "partitions must be between 1 and 10000", "field": "partitions"})
		return
	}
	if req.Replication == 0 {
		req.Replication = -1
	}
	configs := map[string]*string{}
	for k, v := range req.Configs {
		configs[k] = &v
	}
	created, err := c.client.CreateTopic(r.Context(), req.Name, req.Partitions, req.Replication, configs)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"name": req.Name, "partitions": created})
}

func (c *Console) messages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	partition, err := strconv.ParseInt(q.Get("partition"), 10, 32)
	if err != nil {
		partition = 0
	}
	offset, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if err != nil {
		offset = 0
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > 500 {
		limit = 50
	}
	var at time.Time
	if s := q.Get("time"); s != "" {
		if at, err = time.Parse(time.RFC3339, s); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "time must be RFC 3339, e.g. 2026-11-22T10:00:00Z"})
			return
		}
	}
	msgs, err := c.client.Browse(r.Context(), r.PathValue("name"), int32(partition), offset, at, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, msgs)
}

func (c *Console) groups(w http.ResponseWriter, r *http.Request) {
	groups, err := c.client.Groups(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if groups == nil {
		groups = []ops.GroupSummary{}
	}
	writeJSON(w, http.StatusOK, groups)
}

func (c *Console) group(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	detail, err := c.client.Group(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	c.mu.Lock()
	history := append([]LagSample{}, c.lag[id]...)
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"group": detail, "lag_history": history})
}

// resetRequest is the reset form: a dry run unless Execute.
type resetRequest struct {
	Topic   string `json:"topic"`
	To      string `json:"to"` // earliest, latest, offset:N, shift:N, or a time
	Execute bool   `json:"execute"`
}

func (c *Console) resetGroup(w http.ResponseWriter, r *http.Request) {
	var req resetRequest
	if !readForm(w, r, &req) {
		return
	}
	target, err := ops.ParseResetTarget(req.To)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	group := r.PathValue("id")
	plan, err := c.client.PlanReset(r.Context(), group, req.Topic, target)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.Execute {
		if err := c.client.ApplyReset(r.Context(), group, plan); err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"executed": req.Execute, "offsets": plan})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError maps what went wrong to a status and a message that says
// what to do.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusBadGateway
	var unknown *ops.UnknownTopicError
	switch {
	case errors.As(err, &unknown):
		status = http.StatusNotFound
	case errors.Is(err, kerr.TopicAlreadyExists), errors.Is(err, kerr.InvalidPartitions), errors.Is(err, kerr.InvalidReplicationFactor),
		errors.Is(err, kerr.InvalidConfig), errors.Is(err, kerr.InvalidTopicException):
		status = http.StatusBadRequest
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
