package dbtest

import (
	"net"
	"testing"
	"time"
)

// TestDockerProbeDoesNotHang points DOCKER_HOST at an endpoint that accepts
// connections and never answers, the worst case for a probe. It runs after
// the tests that pick this process's server (file order), because
// testcontainers caches the Docker host it finds first.
func TestDockerProbeDoesNotHang(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	t.Setenv("DOCKER_HOST", "tcp://"+l.Addr().String())
	start := time.Now()
	if dockerAnswers(t.Context(), 500*time.Millisecond) {
		t.Error("dockerAnswers = true for an endpoint that never answers")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("dockerAnswers took %v; want about its 500ms timeout", took)
	}
}
