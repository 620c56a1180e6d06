package exporterhelper

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/outrider-dev/outrider/internal/backoff"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// Retrier calls a push attempt until it succeeds, fails permanently, or its context is
// done, waiting between attempts with exponential backoff and jitter, or as long as the
// backend asked (pipeline.RetryAfter, capped at max_retry_after). Each attempt gets its
// own timeout. A Retrier is safe for concurrent use; each Do has its own backoff.
type Retrier struct {
	cfg     RetryConfig
	timeout time.Duration
	m       *instrument
	log     *slog.Logger
	lastLog atomic.Int64 // unix nanoseconds of the last "will retry" line

	// Test hooks.
	sleep func(ctx context.Context, d time.Duration) error
	rand  func() float64
	now   func() time.Time
}

// NewRetrier returns a Retrier; timeout bounds each attempt. cfg must be valid
// (ApplyDefaults, Validate).
func NewRetrier(cfg RetryConfig, timeout time.Duration, set Settings) (*Retrier, error) {
	var p confval.Problems
	cfg.Validate(p.At("retry"))
	ValidateTimeout(&p, "timeout", timeout)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return &Retrier{cfg: cfg, timeout: timeout, m: set.Metrics.bind(set.Name), log: set.logger(),
		sleep: sleepCtx, now: time.Now}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryLogInterval spaces out the "will retry" log lines of one Retrier: a backend
// that is down for an hour should not write a line per attempt.
const retryLogInterval = 30 * time.Second

// Do runs attempt until it returns nil, returns a permanent error (pipeline.Permanent),
// or ctx is done. It returns nil on success; a permanent error (the attempt's, or one
// with reason ReasonRetriesExhausted once max_elapsed has passed); or, when ctx ended
// the retries, an error wrapping ctx's error and the last attempt's — which is never
// permanent, so callers tell "dropped" from "stopped" with pipeline.IsPermanent.
func (r *Retrier) Do(ctx context.Context, attempt func(ctx context.Context) error) error {
	bo := backoff.Backoff{
		Initial:    r.cfg.InitialInterval,
		Max:        r.cfg.MaxInterval,
		Multiplier: backoff.DefaultMultiplier,
		Jitter:     backoff.JitterFull,
		Rand:       r.rand,
	}
	start := r.now()
	logged := false
	for n := 1; ; n++ {
		err := r.try(ctx, attempt)
		if err == nil {
			if logged {
				r.log.Info("push succeeded after retries", "attempts", n,
					"elapsed", r.now().Sub(start).Round(time.Millisecond).String())
			}
			return nil
		}
		if _, ok := pipeline.IsPermanent(err); ok {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped retrying: %w (last error: %v)", ctx.Err(), err)
		}
		delay, throttled := pipeline.RetryAfter(err)
		if throttled {
			delay = min(delay, r.cfg.MaxRetryAfter)
		} else {
			delay = bo.Next()
		}
		if r.cfg.MaxElapsed > 0 && r.now().Add(delay).Sub(start) > r.cfg.MaxElapsed {
			return pipeline.Permanent(ReasonRetriesExhausted,
				fmt.Errorf("gave up after %d attempts in %s (retry.max_elapsed %s): %w",
					n, r.now().Sub(start).Round(time.Millisecond), r.cfg.MaxElapsed, err))
		}
		r.m.retries.Inc()
		if now := r.now().UnixNano(); now-r.lastLog.Load() >= int64(retryLogInterval) {
			r.lastLog.Store(now)
			logged = true
			r.log.Warn("push failed; will retry", "attempt", n, "retry_in", delay.Round(time.Millisecond).String(),
				"throttled", throttled, "error", err)
		}
		if serr := r.sleep(ctx, delay); serr != nil {
			return fmt.Errorf("stopped retrying: %w (last error: %v)", serr, err)
		}
	}
}

func (r *Retrier) try(ctx context.Context, attempt func(ctx context.Context) error) error {
	actx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	t0 := r.now()
	err := attempt(actx)
	secs := r.now().Sub(t0).Seconds()
	switch _, perm := pipeline.IsPermanent(err); {
	case err == nil:
		r.m.reqSuccess.Inc()
		r.m.durSuccess.Observe(secs)
	case perm:
		r.m.reqPermanent.Inc()
		r.m.durPermanent.Observe(secs)
	default:
		r.m.reqRetry.Inc()
		r.m.durRetry.Observe(secs)
	}
	return err
}
