package kubetest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TokenTTL is the lifetime ServiceAccountToken requests (the API server's minimum is
// 10 minutes).
const TokenTTL = 3600

// Token reviewer identity that TokenReviewerJWT creates.
const (
	ReviewerNamespace      = "kube-system"
	ReviewerServiceAccount = "vault-token-reviewer"
)

// ServiceAccountToken returns a token of service account namespace/name from the
// TokenRequest API (valid TokenTTL seconds), the JWT a pod of that service account
// would have mounted: Vault's Kubernetes auth logs it in. It creates the namespace and
// the service account when they do not exist. Without audiences the token is for the
// API server's audience (Issuer), which is what a Vault role without `audience`
// accepts. It is a setup helper: it acts as the admin whatever the client's token.
func (c *Client) ServiceAccountToken(ctx context.Context, namespace, name string, audiences ...string) (string, error) {
	c = c.admin
	if err := c.ensureServiceAccount(ctx, namespace, name); err != nil {
		return "", err
	}
	ttl := int64(TokenTTL)
	req := &authenticationv1.TokenRequest{
		TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenRequest"},
		Spec:     authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &ttl},
	}
	var out authenticationv1.TokenRequest
	path := "/api/v1/namespaces/" + url.PathEscape(namespace) + "/serviceaccounts/" + url.PathEscape(name) + "/token"
	if err := c.Do(ctx, http.MethodPost, path, req, &out); err != nil {
		return "", fmt.Errorf("request a token for service account %s/%s: %w", namespace, name, err)
	}
	if out.Status.Token == "" {
		return "", fmt.Errorf("request a token for service account %s/%s: the API server answered no token", namespace, name)
	}
	return out.Status.Token, nil
}

// TokenReview asks the API server who token belongs to, as Vault's Kubernetes auth
// does: the status says whether it is authenticated, and the user
// (system:serviceaccount:<namespace>:<name> for a service-account token). Without
// audiences the API server checks its own (Issuer). The caller needs the right to
// create tokenreviews (system:auth-delegator).
func (c *Client) TokenReview(ctx context.Context, token string, audiences ...string) (authenticationv1.TokenReviewStatus, error) {
	req := &authenticationv1.TokenReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"},
		Spec:     authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences},
	}
	var out authenticationv1.TokenReview
	if err := c.Do(ctx, http.MethodPost, "/apis/authentication.k8s.io/v1/tokenreviews", req, &out); err != nil {
		return authenticationv1.TokenReviewStatus{}, fmt.Errorf("token review: %w", err)
	}
	return out.Status, nil
}

// TokenReviewerJWT returns a token for Vault's token_reviewer_jwt: one of service
// account ReviewerNamespace/ReviewerServiceAccount, which it creates (as the admin)
// with a ClusterRoleBinding to system:auth-delegator, the ClusterRole that allows
// creating TokenReviews, and returns once that binding is in effect. See the package
// documentation for Vault's configuration. Like ServiceAccountToken, it acts as the
// admin.
func (c *Client) TokenReviewerJWT(ctx context.Context) (string, error) {
	admin := c.admin
	if err := admin.ensureServiceAccount(ctx, ReviewerNamespace, ReviewerServiceAccount); err != nil {
		return "", err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubetest:" + ReviewerServiceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects: []rbacv1.Subject{{
			Kind: rbacv1.ServiceAccountKind, Namespace: ReviewerNamespace, Name: ReviewerServiceAccount,
		}},
	}
	if err := admin.Create(ctx, crb); err != nil && StatusReason(err) != metav1.StatusReasonAlreadyExists {
		return "", fmt.Errorf("bind %s/%s to system:auth-delegator: %w", ReviewerNamespace, ReviewerServiceAccount, err)
	}
	token, err := admin.ServiceAccountToken(ctx, ReviewerNamespace, ReviewerServiceAccount)
	if err != nil {
		return "", err
	}
	// The RBAC authorizer sees a new binding through an informer: return once the
	// reviewer may review (its own token, say).
	reviewer := admin.As(token)
	deadline := time.Now().Add(reviewerWait)
	for {
		_, err := reviewer.TokenReview(ctx, token)
		if err == nil {
			return token, nil
		}
		if StatusReason(err) != metav1.StatusReasonForbidden || time.Now().After(deadline) {
			return "", fmt.Errorf("the token reviewer cannot create TokenReviews: %w", err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// reviewerWait bounds how long TokenReviewerJWT waits for its binding to take effect.
const reviewerWait = 30 * time.Second

// ensureNamespace creates namespace (and its default service account) unless it
// exists.
func (c *Client) ensureNamespace(ctx context.Context, namespace string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	err := c.Create(ctx, ns)
	if err != nil && StatusReason(err) != metav1.StatusReasonAlreadyExists {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	return nil
}

// ensureServiceAccount creates namespace and service account namespace/name unless
// they exist.
func (c *Client) ensureServiceAccount(ctx context.Context, namespace, name string) error {
	if err := c.ensureNamespace(ctx, namespace); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if err := c.Create(ctx, sa); err != nil && StatusReason(err) != metav1.StatusReasonAlreadyExists {
		return fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	return nil
}
