package vaulttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
)

// JWTSigner makes ES256 JWTs by hand (header.payload.signature, base64url), with the
// standard library only, for Vault's jwt auth method: give it PublicPEM as
// jwt_validation_pubkeys.
type JWTSigner struct {
	key *ecdsa.PrivateKey
}

// NewJWTSigner returns a signer with a new P-256 key.
func NewJWTSigner() (*JWTSigner, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &JWTSigner{key: k}, nil
}

// PublicPEM returns the public key as a PEM "PUBLIC KEY" block.
func (s *JWTSigner) PublicPEM() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// Sign returns claims as a JWT signed with the key (ES256).
func (s *JWTSigner) Sign(claims map[string]any) (string, error) {
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b), err
	}
	head, err := enc(map[string]string{"alg": "ES256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	body, err := enc(claims)
	if err != nil {
		return "", err
	}
	signing := head + "." + body
	sum := sha256.Sum256([]byte(signing))
	r, sig, err := ecdsa.Sign(rand.Reader, s.key, sum[:])
	if err != nil {
		return "", err
	}
	// JWS ES256 signatures are r and s as fixed 32-byte big-endian integers.
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	sig.FillBytes(out[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(out), nil
}
