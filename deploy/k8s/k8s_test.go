package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/sensorhub/sensorhub/deploy/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite components/monitoring/prometheusrule.yaml from ../prometheus/rules.yml")

var overlays = []string{"dev", "prod"}

// monitored are the overlays that opt into components/monitoring; the others
// must render no object of the Prometheus Operator's CRDs, so they apply to a
// cluster without it.
var monitored = map[string]bool{"prod": true}

// monitoredOverlays lists the overlays of monitored, in overlays' order.
func monitoredOverlays() []string {
	var out []string
	for _, o := range overlays {
		if monitored[o] {
			out = append(out, o)
		}
	}
	return out
}

// newObject returns an empty object of the Go type of apiVersion/kind; every
// kind the manifests use must be here, so a new kind is decoded strictly too.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, true
	case "batch/v1/Job":
		return &batchv1.Job{}, true
	case "batch/v1/CronJob":
		return &batchv1.CronJob{}, true
	case "gateway.networking.k8s.io/v1/HTTPRoute":
		return &gatewayv1.HTTPRoute{}, true
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, true
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &monitoringv1.PrometheusRule{}, true
	case "postgresql.cnpg.io/v1/Cluster":
		return &cnpgv1.Cluster{}, true
	}
	return nil, false
}

// decodeStrict decodes one YAML document into v the way the API server's
// strict field validation does: unknown and duplicate fields are errors, and
// field names are case-sensitive.
func decodeStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// objects is one rendered overlay, decoded.
type objects struct {
	name string
	all  []any
}

func of[T any](o objects) []*T {
	var out []*T
	for _, x := range o.all {
		if v, ok := x.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

func named[T any](t *testing.T, o objects, name string) *T {
	t.Helper()
	for _, x := range of[T](o) {
		if reflect.ValueOf(x).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta).Name == name {
			return x
		}
	}
	var zero T
	t.Fatalf("%s: no %T named %s", o.name, zero, name)
	return nil
}

// render builds an overlay with the kustomize library (the same engine as
// `kubectl kustomize`) and decodes every document strictly.
func render(t *testing.T, overlay string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("overlays", overlay))
	if err != nil {
		t.Fatalf("kustomize build overlays/%s: %v", overlay, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, overlay, out)
}

func decodeAll(t *testing.T, name string, stream []byte) objects {
	t.Helper()
	o := objects{name: name}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v, ok := newObject(tm.APIVersion, tm.Kind)
		if !ok {
			t.Errorf("%s: no Go type for %s %s: add it to newObject", name, tm.APIVersion, tm.Kind)
			continue
		}
		if err := decodeStrict(doc, v); err != nil {
			t.Errorf("%s: %s %s: %v\n%s", name, tm.APIVersion, tm.Kind, err, doc)
			continue
		}
		o.all = append(o.all, v)
	}
	if len(o.all) == 0 {
		t.Fatalf("%s: nothing rendered", name)
	}
	return o
}

// TestRenderAndDecodeStrictly renders each overlay and decodes every object
// into its Kubernetes (or operator) Go type with unknown fields as errors.
func TestRenderAndDecodeStrictly(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay)
			kinds := map[string]int{}
			for _, x := range o.all {
				kinds[reflect.TypeOf(x).Elem().Name()]++
			}
			for _, want := range []string{"Namespace", "ConfigMap", "Deployment", "Service", "Ingress",
				"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Job", "CronJob"} {
				if kinds[want] == 0 {
					t.Errorf("no %s rendered (%v)", want, kinds)
				}
			}
			for _, crd := range []string{"ServiceMonitor", "PrometheusRule"} {
				if monitored[overlay] && kinds[crd] == 0 {
					t.Errorf("no %s rendered in an overlay with components/monitoring (%v)", crd, kinds)
				}
				if !monitored[overlay] && kinds[crd] > 0 {
					t.Errorf("%s rendered without components/monitoring: the overlay would fail on a cluster without the Prometheus Operator", crd)
				}
			}
			for _, x := range o.all {
				if ns := reflect.ValueOf(x).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta).Namespace; ns != "sensorhub" {
					if _, isNS := x.(*corev1.Namespace); !isNS {
						t.Errorf("%T %v is in namespace %q, want sensorhub", x, reflect.ValueOf(x).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta).Name, ns)
					}
				}
			}
		})
	}
}

// TestExamplesDecodeStrictly covers the manifests no overlay includes.
func TestExamplesDecodeStrictly(t *testing.T) {
	files, _ := filepath.Glob("examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o := decodeAll(t, f, b)
		for _, s := range of[corev1.Secret](o) {
			for k, v := range s.StringData {
				if !strings.Contains(v, "CHANGE-ME") {
					t.Errorf("%s: %s: value of %s is not a CHANGE-ME placeholder", f, s.Name, k)
				}
			}
			if len(s.Data) > 0 {
				t.Errorf("%s: %s: use stringData placeholders, not data", f, s.Name)
			}
		}
	}
}

type podOwner struct {
	kind, name string
	spec       corev1.PodSpec
	labels     map[string]string
}

func pods(o objects) []podOwner {
	var out []podOwner
	for _, d := range of[appsv1.Deployment](o) {
		out = append(out, podOwner{"Deployment", d.Name, d.Spec.Template.Spec, d.Spec.Template.Labels})
	}
	for _, s := range of[appsv1.StatefulSet](o) {
		out = append(out, podOwner{"StatefulSet", s.Name, s.Spec.Template.Spec, s.Spec.Template.Labels})
	}
	for _, j := range of[batchv1.Job](o) {
		out = append(out, podOwner{"Job", j.Name, j.Spec.Template.Spec, j.Spec.Template.Labels})
	}
	for _, c := range of[batchv1.CronJob](o) {
		out = append(out, podOwner{"CronJob", c.Name, c.Spec.JobTemplate.Spec.Template.Spec, c.Spec.JobTemplate.Spec.Template.Labels})
	}
	return out
}

var pinnedTag = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+)*([.-][0-9A-Za-z.-]+)?$`)

// imagePinned: a digest, or a version tag (not latest, not a branch name).
func imagePinned(image string) error {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if !strings.HasPrefix(digest, "sha256:") {
			return fmt.Errorf("%s: digest is not sha256", image)
		}
		return nil
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return fmt.Errorf("%s: no tag", image)
	}
	if tag := image[colon+1:]; !pinnedTag.MatchString(tag) {
		return fmt.Errorf("%s: tag %q is not a version", image, tag)
	}
	return nil
}

// TestPodPolicy checks every container of every workload the way a cluster
// enforcing the restricted Pod Security Standard and the usual admission
// policies would: resources, probes where it serves, non-root, read-only
// root filesystem, no privilege escalation, no capabilities, RuntimeDefault
// seccomp, a pinned image.
func TestPodPolicy(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay)
			if len(pods(o)) < 3 {
				t.Fatalf("only %d workloads rendered", len(pods(o)))
			}
			for _, p := range pods(o) {
				psc := p.spec.SecurityContext
				if psc == nil {
					psc = &corev1.PodSecurityContext{}
				}
				if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
					t.Errorf("%s %s: automountServiceAccountToken is not false", p.kind, p.name)
				}
				containers := slices.Concat(p.spec.InitContainers, p.spec.Containers)
				for _, c := range containers {
					where := fmt.Sprintf("%s %s container %s", p.kind, p.name, c.Name)
					for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
						if _, ok := c.Resources.Requests[res]; !ok {
							t.Errorf("%s: no %s request", where, res)
						}
						if _, ok := c.Resources.Limits[res]; !ok {
							t.Errorf("%s: no %s limit", where, res)
						}
					}
					if len(c.Ports) > 0 && (c.ReadinessProbe == nil || c.LivenessProbe == nil) {
						t.Errorf("%s: serves ports %v without readiness and liveness probes", where, c.Ports)
					}
					sc := c.SecurityContext
					if sc == nil {
						t.Errorf("%s: no securityContext", where)
						continue
					}
					nonRoot := sc.RunAsNonRoot
					if nonRoot == nil {
						nonRoot = psc.RunAsNonRoot
					}
					if nonRoot == nil || !*nonRoot {
						t.Errorf("%s: runAsNonRoot is not true", where)
					}
					uid := sc.RunAsUser
					if uid == nil {
						uid = psc.RunAsUser
					}
					if uid != nil && *uid == 0 {
						t.Errorf("%s: runs as uid 0", where)
					}
					if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
						t.Errorf("%s: readOnlyRootFilesystem is not true", where)
					}
					if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
						t.Errorf("%s: allowPrivilegeEscalation is not false", where)
					}
					if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
						t.Errorf("%s: capabilities %+v, want drop [ALL] and none added", where, sc.Capabilities)
					}
					seccomp := sc.SeccompProfile
					if seccomp == nil {
						seccomp = psc.SeccompProfile
					}
					if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
						t.Errorf("%s: seccompProfile is not RuntimeDefault", where)
					}
					// dev runs our images as built from the checkout and
					// loaded into the local cluster (tag dev); all else is pinned.
					localBuild := overlay == "dev" && strings.HasPrefix(c.Image, imagePrefix) && strings.HasSuffix(c.Image, ":dev")
					if err := imagePinned(c.Image); err != nil && !localBuild {
						t.Errorf("%s: %v", where, err)
					}
				}
			}
			for _, c := range of[cnpgv1.Cluster](o) {
				if err := imagePinned(c.Spec.ImageName); err != nil {
					t.Errorf("Cluster %s: %v", c.Name, err)
				}
				if c.Spec.Resources.Requests == nil || c.Spec.Resources.Limits == nil {
					t.Errorf("Cluster %s: no resources", c.Name)
				}
			}
		})
	}
}

func selects(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return !s.Empty() && s.Matches(labels.Set(lbls))
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// server is a Deployment that serves HTTP, and what the objects around it
// (Service, Ingress, HPA, PDB, NetworkPolicy, ServiceMonitor, all named like
// it) must agree on.
type server struct {
	name string
	// ports are the container ports by name; http is the one that serves.
	ports map[string]int32
	// args are the container's arguments.
	args []string
	// env is the ConfigMap of its settings (envFrom); addrs maps the settings
	// holding listen addresses to the container port each must be.
	env   string
	addrs map[string]string
	// shutdown are the settings (durations) the pod may spend after SIGTERM:
	// the grace period must cover them after the preStop sleep.
	shutdown []string
	// ingress: an Ingress routes to its http Service port.
	ingress bool
	// metrics is the container port of /metrics, which the ServiceMonitor
	// scrapes and the NetworkPolicy opens to the monitoring namespace; job is
	// the scrape job the alerting rules expect.
	metrics, job string
}

// servers are sensorhub's long-running services.
var servers = []server{
	{
		name: "sensorhub-api", ports: map[string]int32{"http": 8080, "admin": 9090}, args: []string{"serve"},
		env: "sensorhub-api-env", addrs: map[string]string{"SENSORHUB_API_ADDR": "http", "SENSORHUB_ADMIN_ADDR": "admin"},
		shutdown: []string{"SENSORHUB_SHUTDOWN_DELAY", "SENSORHUB_SHUTDOWN_TIMEOUT"},
		ingress:  true, metrics: "admin", job: "sensorhub_api",
	},
	{
		name: "sensorhub-ingest-serve", ports: map[string]int32{"http": 8081}, args: []string{"serve"},
		env: "sensorhub-ingest-serve-env", addrs: map[string]string{"INGEST_SERVE_ADDR": "http"},
		shutdown: []string{"INGEST_SHUTDOWN_TIMEOUT"},
		metrics:  "http", job: "sensorhub_write",
	},
}

// addrPort returns the port of a listen address such as ":8080".
func addrPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return int32(n)
}

// TestServers checks each server's Deployment and the objects around it fit
// together: probes on the right paths, listen addresses on the container
// ports, graceful drain, spread, and the Service, Ingress, HPA, PDB,
// NetworkPolicy and ServiceMonitor all pointing at its pods and ports.
func TestServers(t *testing.T) {
	for _, overlay := range overlays {
		o := render(t, overlay)
		cms := map[string]map[string]string{}
		for _, cm := range of[corev1.ConfigMap](o) {
			cms[cm.Name] = cm.Data
		}
		for _, srv := range servers {
			t.Run(overlay+"/"+srv.name, func(t *testing.T) {
				testServer(t, o, overlay, srv, cms)
			})
		}
	}
}

func testServer(t *testing.T, o objects, overlay string, srv server, cms map[string]map[string]string) {
	d := named[appsv1.Deployment](t, o, srv.name)
	pod := d.Spec.Template
	if !selects(t, d.Spec.Selector, pod.Labels) {
		t.Fatalf("Deployment selector %v does not select its pods %v", d.Spec.Selector, pod.Labels)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("Deployment sets replicas; the HPA owns them")
	}
	if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: want maxUnavailable 0, so old pods go only as new ones are ready", s)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if !slices.Equal(c.Args, srv.args) {
		t.Errorf("args %q, want %q", c.Args, srv.args)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want GET %s on port http", name, p, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if !maps.Equal(ports, srv.ports) {
		t.Errorf("container ports %v, want %v", ports, srv.ports)
	}

	// Its settings: the ConfigMap it reads, the ports it listens on.
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.ConfigMapRef != nil && e.ConfigMapRef.Name == srv.env
	}) {
		t.Fatalf("envFrom %+v: want the ConfigMap %s", c.EnvFrom, srv.env)
	}
	env := cms[srv.env]
	for key, port := range srv.addrs {
		if got := addrPort(t, env[key]); got != srv.ports[port] {
			t.Errorf("%s %q listens on %d, but the container port %s is %d", key, env[key], got, port, srv.ports[port])
		}
	}

	// Drain: the preStop sleep while endpoints update, then after SIGTERM
	// the shutdown settings, all within the grace period.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep: the pod would stop before load balancers stop sending to it")
	}
	after := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	for _, key := range srv.shutdown {
		v, err := time.ParseDuration(env[key])
		if err != nil {
			t.Fatalf("%s %s: %v", srv.env, key, err)
		}
		after += v
	}
	grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= after {
		t.Errorf("terminationGracePeriodSeconds %s does not exceed the preStop sleep plus %v (%s): in-flight requests would be killed",
			grace, srv.shutdown, after)
	}

	if len(pod.Spec.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints")
	}
	for _, tsc := range pod.Spec.TopologySpreadConstraints {
		if !selects(t, tsc.LabelSelector, pod.Labels) {
			t.Errorf("topology spread on %s does not select the pods", tsc.TopologyKey)
		}
	}

	svc := named[corev1.Service](t, o, srv.name)
	if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service type %s, want ClusterIP", svc.Spec.Type)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		t.Errorf("Service selector %v does not select the pods", svc.Spec.Selector)
	}
	svcPorts := map[string]string{} // Service port name -> container port name
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = p.TargetPort.String()
		if _, ok := ports[p.TargetPort.String()]; !ok {
			t.Errorf("Service port %s targets %s, which the container does not name", p.Name, p.TargetPort.String())
		}
	}
	if svcPorts["http"] != "http" {
		t.Errorf("Service ports %v: want http targeting the container's http", svcPorts)
	}

	if srv.ingress {
		ing := named[networkingv1.Ingress](t, o, srv.name)
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				if b := p.Backend.Service; b == nil || b.Name != svc.Name || b.Port.Name != "http" || svcPorts[b.Port.Name] == "" {
					t.Errorf("Ingress backend %+v: want the Service's http port", p.Backend.Service)
				}
			}
		}
	} else {
		for _, ing := range of[networkingv1.Ingress](o) {
			for _, r := range ing.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					if b := p.Backend.Service; b != nil && b.Name == svc.Name {
						t.Errorf("Ingress %s routes to the Service; the base exposes it inside the cluster only", ing.Name)
					}
				}
			}
		}
	}

	hpa := named[autoscalingv2.HorizontalPodAutoscaler](t, o, srv.name)
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name {
		t.Errorf("HPA targets %+v", hpa.Spec.ScaleTargetRef)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
		t.Fatalf("HPA min %v max %d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if overlay != "dev" && *hpa.Spec.MinReplicas < 2 {
		t.Errorf("HPA minReplicas %d: want at least 2 beyond dev", *hpa.Spec.MinReplicas)
	}
	cpuMetric := false
	for _, m := range hpa.Spec.Metrics {
		cpuMetric = cpuMetric || (m.Resource != nil && m.Resource.Name == corev1.ResourceCPU)
	}
	if !cpuMetric {
		t.Errorf("HPA metrics %+v: want CPU utilization", hpa.Spec.Metrics)
	}
	if c.Resources.Requests.Cpu().IsZero() {
		t.Error("a CPU-utilization HPA needs a CPU request")
	}

	pdb := named[policyv1.PodDisruptionBudget](t, o, srv.name)
	if !selects(t, pdb.Spec.Selector, pod.Labels) {
		t.Error("PodDisruptionBudget does not select the pods")
	}
	if pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() >= int(*hpa.Spec.MinReplicas) {
		t.Errorf("PDB minAvailable %s with as few as %d replicas blocks every eviction", pdb.Spec.MinAvailable, *hpa.Spec.MinReplicas)
	}

	np := named[networkingv1.NetworkPolicy](t, o, srv.name)
	if !selects(t, &np.Spec.PodSelector, pod.Labels) {
		t.Error("NetworkPolicy does not select the pods")
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy types %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	inPorts := map[int]bool{}
	fromNS := map[string]map[int]bool{} // namespace -> ports it may reach
	for _, r := range np.Spec.Ingress {
		if len(r.From) == 0 {
			t.Error("NetworkPolicy ingress rule open to every source")
		}
		for _, f := range r.From {
			if f.IPBlock != nil {
				t.Errorf("NetworkPolicy ingress from %s: want namespace and pod selectors", f.IPBlock.CIDR)
			}
			if f.NamespaceSelector != nil && len(f.NamespaceSelector.MatchLabels) == 0 && len(f.NamespaceSelector.MatchExpressions) == 0 &&
				(f.PodSelector == nil || (len(f.PodSelector.MatchLabels) == 0 && len(f.PodSelector.MatchExpressions) == 0)) {
				t.Error("NetworkPolicy ingress from every pod of every namespace")
			}
		}
		for _, p := range r.Ports {
			inPorts[p.Port.IntValue()] = true
			for _, f := range r.From {
				if f.NamespaceSelector == nil || f.PodSelector != nil {
					continue
				}
				ns := f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
				if fromNS[ns] == nil {
					fromNS[ns] = map[int]bool{}
				}
				fromNS[ns][p.Port.IntValue()] = true
			}
		}
	}
	wantIn := map[int]bool{}
	for _, p := range srv.ports {
		wantIn[int(p)] = true
	}
	if !maps.Equal(inPorts, wantIn) {
		t.Errorf("NetworkPolicy ingress ports %v, want the container ports %v", inPorts, wantIn)
	}
	if !fromNS["monitoring"][int(srv.ports[srv.metrics])] {
		t.Errorf("NetworkPolicy does not let Prometheus (namespace monitoring) reach /metrics on %d", srv.ports[srv.metrics])
	}
	if srv.ingress && !fromNS["ingress-nginx"][int(srv.ports["http"])] {
		t.Errorf("NetworkPolicy does not let the ingress controller reach port %d", srv.ports["http"])
	}
	var dns, dbSelector bool
	var dbPeers []networkingv1.NetworkPolicyPeer
	for _, r := range np.Spec.Egress {
		for _, p := range r.Ports {
			switch p.Port.IntValue() {
			case 53:
				dns = true
			case 5432:
				dbSelector = true
				dbPeers = append(dbPeers, r.To...)
			}
		}
	}
	if !dns || !dbSelector {
		t.Errorf("NetworkPolicy egress: DNS %v, database %v; want both", dns, dbSelector)
	}
	// The database's pods must be among the peers it may reach.
	var dbPodLabels []map[string]string
	for _, s := range of[appsv1.StatefulSet](o) {
		dbPodLabels = append(dbPodLabels, s.Spec.Template.Labels)
	}
	for _, cl := range of[cnpgv1.Cluster](o) {
		if cl.Spec.InheritedMetadata == nil {
			t.Fatalf("Cluster %s has no inheritedMetadata labels for the NetworkPolicy", cl.Name)
		}
		dbPodLabels = append(dbPodLabels, cl.Spec.InheritedMetadata.Labels)
	}
	if len(dbPodLabels) == 0 {
		t.Error("no database in the overlay")
	}
	for _, l := range dbPodLabels {
		ok := false
		for _, peer := range dbPeers {
			if peer.PodSelector != nil && selects(t, peer.PodSelector, l) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the NetworkPolicy does not let the pods reach database pods labelled %v", l)
		}
	}

	if !monitored[overlay] {
		return
	}
	sm := named[monitoringv1.ServiceMonitor](t, o, srv.name)
	if !selects(t, &sm.Spec.Selector, svc.Labels) {
		t.Error("ServiceMonitor does not select the Service")
	}
	for _, other := range of[corev1.Service](o) {
		if other.Name != svc.Name && selects(t, &sm.Spec.Selector, other.Labels) {
			t.Errorf("ServiceMonitor also selects the Service %s", other.Name)
		}
	}
	if job := svc.Labels[sm.Spec.JobLabel]; job != srv.job {
		t.Errorf("ServiceMonitor jobLabel %q gives job %q; the alerting rules expect %s", sm.Spec.JobLabel, job, srv.job)
	}
	if len(sm.Spec.Endpoints) != 1 || svcPorts[sm.Spec.Endpoints[0].Port] != srv.metrics || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v: want /metrics on the Service port of the container's %s", sm.Spec.Endpoints, srv.metrics)
	}
}

// TestIngestServe checks what is particular to the write service: it runs
// the ingest image (the one the ingest Job runs) with authentication on and
// the write keys from their own Secret key, and a push waiting for its
// commit gets its answer before the shutdown timeout ends.
func TestIngestServe(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay)
			c := named[appsv1.Deployment](t, o, "sensorhub-ingest-serve").Spec.Template.Spec.Containers[0]
			job := named[batchv1.Job](t, o, "sensorhub-ingest").Spec.Template.Spec.Containers[0]
			if c.Image != job.Image {
				t.Errorf("image %s, the ingest Job's %s: want the same", c.Image, job.Image)
			}
			env := named[corev1.ConfigMap](t, o, "sensorhub-ingest-serve-env").Data
			if env["INGEST_AUTH"] != "on" {
				t.Errorf("INGEST_AUTH %q: want on (the API, dev included, runs with keys too)", env["INGEST_AUTH"])
			}
			if e := envVar(c, "INGEST_WRITE_KEYS"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
				e.ValueFrom.SecretKeyRef.Name != "sensorhub-db-credentials" || e.ValueFrom.SecretKeyRef.Key != "write-keys" {
				t.Errorf("INGEST_WRITE_KEYS %+v: want the write-keys key of sensorhub-db-credentials", e)
			}
			for _, key := range []string{"SENSORHUB_API_KEYS", "INGEST_WRITE_KEYS_FILE"} {
				if envVar(c, key) != nil || env[key] != "" {
					t.Errorf("%s is set; the write keys come from INGEST_WRITE_KEYS alone", key)
				}
			}
			wait, err := time.ParseDuration(env["INGEST_WRITE_WAIT"])
			if err != nil {
				t.Fatalf("INGEST_WRITE_WAIT: %v", err)
			}
			timeout, err := time.ParseDuration(env["INGEST_SHUTDOWN_TIMEOUT"])
			if err != nil {
				t.Fatalf("INGEST_SHUTDOWN_TIMEOUT: %v", err)
			}
			if wait >= timeout {
				t.Errorf("INGEST_WRITE_WAIT %s is not below INGEST_SHUTDOWN_TIMEOUT %s: a push in flight at SIGTERM could be cut off", wait, timeout)
			}
			for key, want := range map[string]string{"LOG_FORMAT": "json", "INGEST_MAX_BODY_BYTES": "16777216", "INGEST_MAX_IN_FLIGHT": "32"} {
				if env[key] != want {
					t.Errorf("%s %q, want %q", key, env[key], want)
				}
			}
			if _, err := strconv.ParseFloat(env["INGEST_RATE_LIMIT"], 64); err != nil {
				t.Errorf("INGEST_RATE_LIMIT %q: %v", env["INGEST_RATE_LIMIT"], err)
			}
		})
	}
}

// TestConfigReferences checks every configMapKeyRef and secretKeyRef: the
// ConfigMap keys exist in the render; Secrets exist in the render or are the
// ones an operator (the example Secret) or CloudNativePG creates.
func TestConfigReferences(t *testing.T) {
	b, err := os.ReadFile("examples/secret.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var example corev1.Secret
	if err := decodeStrict(b, &example); err != nil {
		t.Fatal(err)
	}
	// The command operations.md gives to create the same Secret must make
	// every key too: a pod referencing a key it lacks fails with
	// CreateContainerConfigError.
	documented := documentedSecretKeys(t, example.Name)
	for key := range example.StringData {
		if !documented[key] {
			t.Errorf("docs/operations.md's kubectl create secret %s does not set %s, which the example (and the pods) have", example.Name, key)
		}
	}
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay)
			cms := map[string]map[string]string{}
			for _, cm := range of[corev1.ConfigMap](o) {
				cms[cm.Name] = cm.Data
			}
			secrets := map[string]map[string]string{}
			for _, s := range of[corev1.Secret](o) {
				secrets[s.Name] = s.StringData
			}
			external := map[string]map[string]string{}
			if _, ok := secrets[example.Name]; !ok {
				external[example.Name] = example.StringData // created out of band
			}
			for _, cl := range of[cnpgv1.Cluster](o) {
				if cl.Spec.EnableSuperuserAccess != nil && *cl.Spec.EnableSuperuserAccess {
					external[cl.Name+"-superuser"] = map[string]string{"username": "", "password": ""}
				}
			}
			for _, p := range pods(o) {
				for _, c := range slices.Concat(p.spec.InitContainers, p.spec.Containers) {
					for _, e := range c.EnvFrom {
						if e.ConfigMapRef != nil && cms[e.ConfigMapRef.Name] == nil {
							t.Errorf("%s %s: envFrom ConfigMap %s is not rendered", p.kind, p.name, e.ConfigMapRef.Name)
						}
					}
					for _, e := range c.Env {
						if e.ValueFrom == nil {
							continue
						}
						if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
							if _, ok := cms[r.Name][r.Key]; !ok {
								t.Errorf("%s %s: %s from ConfigMap %s key %s, which is not rendered", p.kind, p.name, e.Name, r.Name, r.Key)
							}
						}
						if r := e.ValueFrom.SecretKeyRef; r != nil {
							data, ok := secrets[r.Name]
							if !ok {
								data, ok = external[r.Name]
							}
							if _, has := data[r.Key]; !ok || !has {
								t.Errorf("%s %s: %s from Secret %s key %s, which nothing creates", p.kind, p.name, e.Name, r.Name, r.Key)
							}
						}
					}
				}
			}
		})
	}
}

// documentedSecretKeys returns the keys the docs' `kubectl create secret
// generic NAME` command sets with --from-literal or --from-file.
func documentedSecretKeys(t *testing.T, name string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	keys := map[string]bool{}
	found := false
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, "create secret generic "+name) {
			continue
		}
		found = true
		for _, m := range regexp.MustCompile(`--from-(?:literal|file)=([A-Za-z0-9._-]+)=`).FindAllStringSubmatch(line, -1) {
			keys[m[1]] = true
		}
	}
	if !found {
		t.Fatalf("docs/operations.md has no `kubectl create secret generic %s` command", name)
	}
	return keys
}

// dsnHost returns host=... of a keyword/value DSN.
func dsnHost(dsn string) string {
	for _, f := range strings.Fields(dsn) {
		if h, ok := strings.CutPrefix(f, "host="); ok {
			return h
		}
	}
	return ""
}

// TestDatabases checks where each program connects in each overlay: the
// API as sensorhub_api (read-only), on prod the CloudNativePG -ro Service;
// ingest, the write service and migrate on the primary, the first two as
// the writer sensorhub_ingest.
func TestDatabases(t *testing.T) {
	wantHosts := map[string]map[string]string{
		"dev":  {"api-dsn": "timescaledb", "ingest-dsn": "timescaledb", "migrate-dsn": "timescaledb"},
		"prod": {"api-dsn": "sensorhub-db-ro", "ingest-dsn": "sensorhub-db-rw", "migrate-dsn": "sensorhub-db-rw"},
	}
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay)
			cm := named[corev1.ConfigMap](t, o, "sensorhub-database")
			for key, host := range wantHosts[overlay] {
				if got := dsnHost(cm.Data[key]); got != host {
					t.Errorf("%s host %q, want %q", key, got, host)
				}
				if strings.Contains(cm.Data[key], "password") {
					t.Errorf("%s carries a password; passwords come from the Secret as PGPASSWORD", key)
				}
			}
			if !strings.Contains(cm.Data["api-dsn"], "user=sensorhub_api") || cm.Data["api-user"] != "sensorhub_api" {
				t.Errorf("the API does not connect as the read-only sensorhub_api: %q", cm.Data["api-dsn"])
			}
			api := named[appsv1.Deployment](t, o, "sensorhub-api").Spec.Template.Spec.Containers[0]
			if e := envVar(api, "DATABASE_URL"); e == nil || e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil || e.ValueFrom.ConfigMapKeyRef.Key != "api-dsn" {
				t.Errorf("API DATABASE_URL %+v, want the api-dsn key", e)
			}
			if !strings.Contains(cm.Data["ingest-dsn"], "user=sensorhub_ingest") || cm.Data["ingest-user"] != "sensorhub_ingest" {
				t.Errorf("ingest-dsn %q does not connect as the writer sensorhub_ingest", cm.Data["ingest-dsn"])
			}
			// The writers: the ingest Job and the write service, with the
			// DSN and password migrate gives sensorhub_ingest, never the API's.
			writers := map[string]corev1.Container{
				"Job sensorhub-ingest":              named[batchv1.Job](t, o, "sensorhub-ingest").Spec.Template.Spec.Containers[0],
				"Deployment sensorhub-ingest-serve": named[appsv1.Deployment](t, o, "sensorhub-ingest-serve").Spec.Template.Spec.Containers[0],
			}
			for who, c := range writers {
				if e := envVar(c, "DATABASE_URL"); e == nil || e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil ||
					e.ValueFrom.ConfigMapKeyRef.Name != "sensorhub-database" || e.ValueFrom.ConfigMapKeyRef.Key != "ingest-dsn" {
					t.Errorf("%s DATABASE_URL %+v, want the ingest-dsn key of sensorhub-database", who, e)
				}
				if e := envVar(c, "PGPASSWORD"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
					e.ValueFrom.SecretKeyRef.Name != "sensorhub-db-credentials" || e.ValueFrom.SecretKeyRef.Key != "ingest-password" {
					t.Errorf("%s PGPASSWORD %+v, want the ingest-password key of sensorhub-db-credentials", who, e)
				}
			}
			switch overlay {
			case "dev":
				sts := named[appsv1.StatefulSet](t, o, "timescaledb")
				if len(sts.Spec.VolumeClaimTemplates) == 0 {
					t.Error("the TimescaleDB StatefulSet has no volumeClaimTemplates")
				}
				if img := sts.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, "timescale/timescaledb:") {
					t.Errorf("dev database image %s", img)
				}
				named[corev1.Service](t, o, "timescaledb")
				for _, s := range of[corev1.Secret](o) {
					for k, v := range s.StringData {
						if !strings.Contains(v, "dev-only") {
							t.Errorf("dev Secret %s key %s is not marked dev-only", s.Name, k)
						}
					}
				}
				ingest := named[batchv1.Job](t, o, "sensorhub-ingest").Spec.Template.Spec
				if len(ingest.InitContainers) != 1 || !slices.Contains(ingest.InitContainers[0].Args, "gen") {
					t.Errorf("dev ingest Job: want an initContainer that generates the sample, got %+v", ingest.InitContainers)
				}
			case "prod":
				cl := named[cnpgv1.Cluster](t, o, "sensorhub-db")
				if cl.Spec.Instances != 3 {
					t.Errorf("Cluster instances %d, want 3", cl.Spec.Instances)
				}
				if len(of[appsv1.StatefulSet](o)) != 0 || len(of[corev1.Secret](o)) != 0 {
					t.Error("prod renders a StatefulSet or a Secret; credentials must come from outside the repository")
				}
				migrate := named[batchv1.Job](t, o, "sensorhub-migrate").Spec.Template.Spec.Containers[0]
				if e := envVar(migrate, "PGPASSWORD"); e == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "sensorhub-db-superuser" {
					t.Errorf("prod migrate PGPASSWORD %+v, want CloudNativePG's superuser Secret", e)
				}
				for _, name := range []string{"sensorhub-api", "sensorhub-ingest-serve"} {
					hpa := named[autoscalingv2.HorizontalPodAutoscaler](t, o, name)
					if *hpa.Spec.MinReplicas < 3 {
						t.Errorf("prod HPA %s minReplicas %d, want at least 3", name, *hpa.Spec.MinReplicas)
					}
				}
			}
		})
	}
}

// TestDashboardConfigMaps checks that every dashboard JSON becomes a
// ConfigMap for Grafana's sidecar with the file's exact content.
func TestDashboardConfigMaps(t *testing.T) {
	files, _ := filepath.Glob("../grafana/dashboards/*.json")
	if len(files) == 0 {
		t.Fatal("no dashboards")
	}
	for _, overlay := range monitoredOverlays() {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay)
			found := map[string]bool{}
			for _, cm := range of[corev1.ConfigMap](o) {
				if cm.Labels["grafana_dashboard"] != "1" {
					continue
				}
				for key, data := range cm.Data {
					b, err := os.ReadFile(filepath.Join("../grafana/dashboards", key))
					if err != nil {
						t.Errorf("ConfigMap %s key %s: %v", cm.Name, key, err)
						continue
					}
					if string(b) != data {
						t.Errorf("ConfigMap %s key %s differs from the file", cm.Name, key)
					}
					found[key] = true
				}
			}
			for _, f := range files {
				if !found[filepath.Base(f)] {
					t.Errorf("%s: no ConfigMap labelled grafana_dashboard: \"1\" carries it", f)
				}
			}
		})
	}
}

const prometheusRuleHeader = `# GENERATED from deploy/prometheus/rules.yml — do not edit; edit rules.yml and run
#   go test ./deploy/k8s -run TestPrometheusRuleMatchesRulesFile -update
# The Prometheus Operator loads it into every Prometheus whose ruleSelector
# matches its labels (kube-prometheus-stack: add your release label, or set
# ruleSelectorNilUsesHelmValues: false).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: sensorhub
  labels:
    app.kubernetes.io/name: sensorhub
spec:
`

// TestPrometheusRuleMatchesRulesFile checks that the PrometheusRule every
// overlay renders carries exactly rules.yml's groups; with -update it
// regenerates components/monitoring/prometheusrule.yaml from rules.yml first.
func TestPrometheusRuleMatchesRulesFile(t *testing.T) {
	rules, err := os.ReadFile("../prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		// Keep rules.yml's text (comments, block scalars) from "groups:" on,
		// indented under spec.
		i := bytes.Index(rules, []byte("\ngroups:"))
		if i < 0 {
			t.Fatal("rules.yml has no top-level groups")
		}
		var b strings.Builder
		b.WriteString(prometheusRuleHeader)
		for _, line := range strings.Split(strings.TrimRight(string(rules[i+1:]), "\n"), "\n") {
			if line != "" {
				b.WriteString("  " + line)
			}
			b.WriteString("\n")
		}
		if err := os.WriteFile("components/monitoring/prometheusrule.yaml", []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want monitoringv1.PrometheusRuleSpec
	if err := decodeStrict(rules, &want); err != nil {
		t.Fatalf("rules.yml as PrometheusRuleSpec: %v", err)
	}
	for _, overlay := range monitoredOverlays() {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay)
			pr := named[monitoringv1.PrometheusRule](t, o, "sensorhub")
			if !reflect.DeepEqual(pr.Spec, want) {
				t.Errorf("PrometheusRule sensorhub differs from deploy/prometheus/rules.yml; run\n  go test ./deploy/k8s -run TestPrometheusRuleMatchesRulesFile -update")
			}
		})
	}
}

// TestKubectlKustomize renders the overlays with kubectl too, when it is
// installed, since the deploy workflow applies with `kubectl apply -k`. The
// other tests render with the kustomize library, so this one only skips
// without kubectl, even on CI.
func TestKubectlKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not on PATH; the kustomize library rendered the overlays in the other tests")
	}
	for _, overlay := range overlays {
		out := testenv.Run(t, ".", kubectl, "kustomize", filepath.Join("overlays", overlay))
		o := decodeAll(t, "kubectl kustomize "+overlay, []byte(out))
		if want := len(render(t, overlay).all); len(o.all) != want {
			t.Errorf("%s: kubectl rendered %d objects, the kustomize library %d", overlay, len(o.all), want)
		}
	}
}

// TestRecommendedLabels: every object carries part-of, instance and
// managed-by; every workload and its pod template also name, component and
// version, which is the tag of the sensorhub image it runs.
func TestRecommendedLabels(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay)
			for _, x := range o.all {
				meta := reflect.ValueOf(x).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta)
				for _, k := range []string{"part-of", "instance", "managed-by"} {
					if meta.Labels["app.kubernetes.io/"+k] == "" {
						t.Errorf("%T %s has no app.kubernetes.io/%s", x, meta.Name, k)
					}
				}
			}
			for _, p := range pods(o) {
				var tag string
				for _, c := range p.spec.Containers {
					if strings.HasPrefix(c.Image, imagePrefix) {
						_, tag, _ = strings.Cut(c.Image, ":")
					}
				}
				for _, k := range []string{"name", "component", "version"} {
					if p.labels["app.kubernetes.io/"+k] == "" {
						t.Errorf("%s %s: pod template has no app.kubernetes.io/%s", p.kind, p.name, k)
					}
				}
				if tag != "" && p.labels["app.kubernetes.io/version"] != tag {
					t.Errorf("%s %s: app.kubernetes.io/version %q, but it runs tag %q", p.kind, p.name, p.labels["app.kubernetes.io/version"], tag)
				}
			}
		})
	}
}

// TestOptionalComponents renders examples/components (prod with the
// gateway-api and jwt-egress Components): the HTTPRoute reaches the API
// Service's port for the Ingress's host, the NetworkPolicy admits the
// Gateway's namespace on the container port and lets the API reach HTTPS
// outside the cluster for the JWKS; the plain overlays allow neither.
func TestOptionalComponents(t *testing.T) {
	o := render(t, "../examples/components")
	svc := named[corev1.Service](t, o, "sensorhub-api")
	ing := named[networkingv1.Ingress](t, o, "sensorhub-api")
	route := named[gatewayv1.HTTPRoute](t, o, "sensorhub-api")
	if route.Namespace != "sensorhub" {
		t.Errorf("HTTPRoute in namespace %q", route.Namespace)
	}
	if len(route.Spec.Hostnames) != 1 || string(route.Spec.Hostnames[0]) != ing.Spec.Rules[0].Host {
		t.Errorf("HTTPRoute hostnames %v, Ingress host %s", route.Spec.Hostnames, ing.Spec.Rules[0].Host)
	}
	if len(route.Spec.Rules) != 1 || len(route.Spec.Rules[0].BackendRefs) != 1 {
		t.Fatalf("HTTPRoute rules %+v", route.Spec.Rules)
	}
	ref := route.Spec.Rules[0].BackendRefs[0]
	portOK := false
	for _, p := range svc.Spec.Ports {
		portOK = portOK || (ref.Port != nil && p.Port == int32(*ref.Port) && p.Name == "http")
	}
	if string(ref.Name) != svc.Name || !portOK {
		t.Errorf("HTTPRoute backend %s:%v is not the API Service's http port", ref.Name, ref.Port)
	}
	allows := func(np *networkingv1.NetworkPolicy) (gateway, https bool) {
		for _, r := range np.Spec.Ingress {
			for _, f := range r.From {
				if f.NamespaceSelector != nil && f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "gateway-system" {
					for _, p := range r.Ports {
						gateway = gateway || p.Port.IntValue() == 8080
					}
				}
			}
		}
		for _, r := range np.Spec.Egress {
			for _, to := range r.To {
				if to.IPBlock != nil && to.IPBlock.CIDR == "0.0.0.0/0" {
					for _, p := range r.Ports {
						https = https || p.Port.IntValue() == 443
					}
				}
			}
		}
		return
	}
	if gw, https := allows(named[networkingv1.NetworkPolicy](t, o, "sensorhub-api")); !gw || !https {
		t.Errorf("with the components the NetworkPolicy admits the Gateway: %v, lets the API reach HTTPS (JWKS): %v", gw, https)
	}
	for _, overlay := range overlays {
		if gw, https := allows(named[networkingv1.NetworkPolicy](t, render(t, overlay), "sensorhub-api")); gw || https {
			t.Errorf("%s without the components: NetworkPolicy admits a Gateway %v, HTTPS egress %v", overlay, gw, https)
		}
	}
}

// TestJobsUnderGitOps: Argo CD runs migrate before and ingest after the
// rollout as hooks recreated on every sync; Flux force-replaces both.
func TestJobsUnderGitOps(t *testing.T) {
	want := map[string]string{"sensorhub-migrate": "PreSync", "sensorhub-ingest": "PostSync"}
	for _, overlay := range overlays {
		o := render(t, overlay)
		for name, hook := range want {
			j := named[batchv1.Job](t, o, name)
			a := j.Annotations
			if a["argocd.argoproj.io/hook"] != hook || a["argocd.argoproj.io/hook-delete-policy"] != "BeforeHookCreation" ||
				a["kustomize.toolkit.fluxcd.io/force"] != "enabled" {
				t.Errorf("%s: Job %s annotations %v; want Argo CD hook %s recreated before each run and Flux force", overlay, name, a, hook)
			}
		}
	}
}
