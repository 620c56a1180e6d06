package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	_ "github.com/lib/pq" // the PostgreSQL driver
)

// pools holds the connection pool opened with the current credentials. A reload opens
// a new pool and swaps it in; the old one is closed once the requests that took it
// have finished, so a credential rotation drops no request.
type pools struct {
	file, addr, name string

	mu      sync.Mutex
	cur     *pool
	curUser string
}

// pool is one connection pool and the requests using it.
type pool struct {
	db    *sql.DB
	users sync.WaitGroup
}

// acquire returns the current pool; release it when the request is done with it.
func (p *pools) acquire() *pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.cur
	c.users.Add(1)
	return c
}

func (c *pool) release() { c.users.Done() }

func (p *pools) user() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.curUser
}

// reload reads the credentials file, opens a pool with them and checks it, then swaps
// it in. On any error the current pool stays.
func (p *pools) reload(ctx context.Context) error {
	kv, err := readEnvFile(p.file)
	if err != nil {
		return err
	}
	user, pass := kv["DB_USER"], kv["DB_PASSWORD"]
	if user == "" || pass == "" {
		return fmt.Errorf("%s has no DB_USER= or DB_PASSWORD= line", p.file)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pass), Host: p.addr, Path: "/" + p.name, RawQuery: "sslmode=disable&connect_timeout=5"}
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxLifetime(time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return fmt.Errorf("connect to PostgreSQL at %s as %s: %w", p.addr, user, err)
	}
	p.mu.Lock()
	old := p.cur
	p.cur, p.curUser = &pool{db: db}, user
	p.mu.Unlock()
	if old != nil {
		go func() {
			old.users.Wait()
			old.db.Close()
		}()
	}
	return nil
}

func (p *pools) close() {
	p.mu.Lock()
	c := p.cur
	p.mu.Unlock()
	if c != nil {
		c.users.Wait()
		c.db.Close()
	}
}

// readEnvFile reads KEY=value lines (values may be quoted), as outrider's env format
// renders them.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(strings.TrimPrefix(k, "export "))
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out, sc.Err()
}
