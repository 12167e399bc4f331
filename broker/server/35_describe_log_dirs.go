package server

// DescribeLogDirs (key 35), v0–v4.
//   v1: no change.
//   v2: flexible.
//   v3: top-level error code.
//   v4: total and usable bytes of the directory's file system.
// The broker has one log directory, its data directory.

import (
	"path/filepath"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(35, 0, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	cl := c.server.cluster
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir, _ = filepath.Abs(cl.Config().DataDir)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(cl.Config().DataDir, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * fs.Bsize
		dir.UsableBytes = int64(fs.Bavail) * fs.Bsize
	}
	wanted := map[string][]int32{}
	for _, rt := range r.Topics {
		wanted[rt.Topic] = rt.Partitions
	}
	for _, t := range cl.Topics() {
		partitions, asked := wanted[t.Name]
		if r.Topics != nil && !asked {
			continue
		}
		topic := kmsg.NewDescribeLogDirsResponseDirTopic()
		topic.Topic = t.Name
		for _, p := range t.Partitions {
			if p.Log == nil || r.Topics != nil && !containsInt32(partitions, p.Index) {
				continue // not on this broker, or not asked for
			}
			partition := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			partition.Partition, partition.Size = p.Index, p.Log.Size()
			topic.Partitions = append(topic.Partitions, partition)
		}
		dir.Topics = append(dir.Topics, topic)
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp, nil
}

func containsInt32(values []int32, v int32) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}
