package kubetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// errNoServiceAddress reports that no address of the service range was free.
var errNoServiceAddress = errors.New("no free ClusterIP in the service range " + ServiceCIDR)

// ServiceListener returns a TCP listener on a free ClusterIP of ServiceCIDR (a
// loopback address) and a free port, and creates Service namespace/name (type
// ClusterIP, no selector) with exactly that ClusterIP and port. A webhook configured
// with clientConfig.service {namespace, name, port: <the listener's port>} then
// reaches the listener: the API server resolves a webhook Service to its ClusterIP and
// dials it directly (nothing translates ports here: there is no kube-proxy). The
// webhook's certificate must name "<name>.<namespace>.svc" (see ServingCert). The
// namespace is created when missing. It is a setup helper: it acts as the admin. The
// caller closes the listener.
func (c *Client) ServiceListener(ctx context.Context, namespace, name string) (net.Listener, error) {
	admin := c.admin
	if err := admin.ensureNamespace(ctx, namespace); err != nil {
		return nil, err
	}
	// .0 is the network address, .1 default/kubernetes, .255 the broadcast address.
	const first, count = 2, 253
	start := rand.IntN(count)
	for i := range count {
		ip := fmt.Sprintf("127.0.100.%d", first+(start+i)%count)
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			continue
		}
		port := int32(ln.Addr().(*net.TCPAddr).Port)
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec: corev1.ServiceSpec{
				Type:      corev1.ServiceTypeClusterIP,
				ClusterIP: ip,
				Ports: []corev1.ServicePort{{
					Name: "https", Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port),
				}},
			},
		}
		err = admin.Create(ctx, svc)
		if err == nil {
			return ln, nil
		}
		ln.Close()
		if StatusReason(err) == metav1.StatusReasonInvalid && strings.Contains(err.Error(), "already allocated") {
			continue // another test's Service holds this ClusterIP
		}
		return nil, fmt.Errorf("create service %s/%s at %s:%d: %w", namespace, name, ip, port, err)
	}
	return nil, errNoServiceAddress
}
