package e2e

import "testing"

func TestHarnessSmoke(t *testing.T) {
	n := StartNode(t, NodeOptions{})
	p := n.CreateProperty(t, "web", "https://example.com")
	if got := n.Timeline(t, p.SecretKey, "user_id:nobody"); got != nil {
		t.Fatalf("timeline of unknown user = %v, want nil", got)
	}
	if tr := n.Traits(t, p.SecretKey, "user_id:nobody"); tr != nil {
		t.Fatalf("traits = %v", tr)
	}
	if tok := n.OwnerToken(t); tok == "" {
		t.Fatal("no token")
	}
	n.Stop(t)
	n2 := StartNode(t, NodeOptions{DataDir: n.DataDir})
	n2.Kill(t)
}
