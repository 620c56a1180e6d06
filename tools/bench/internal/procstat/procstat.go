// Package procstat reads a process's CPU time and peak resident memory from Linux's
// /proc, for benchmarks that measure a child process while it is still running.
package procstat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Usage is what a process has consumed since it started.
type Usage struct {
	// CPU is user plus system CPU time (utime + stime), threads included, children not.
	CPU time.Duration
	// PeakRSS is the resident set size high-water mark (VmHWM), in bytes.
	PeakRSS int64
	// RSS is the resident set size now (VmRSS), in bytes.
	RSS int64
}

// DefaultClockTicks is USER_HZ on every Linux architecture Go supports; ClockTicks
// falls back to it when the kernel's auxiliary vector cannot be read.
const DefaultClockTicks = 100

// atClkTck is the auxiliary vector key for the clock tick rate (AT_CLKTCK).
const atClkTck = 17

// ClockTicks returns the kernel's clock tick rate (sysconf(_SC_CLK_TCK)), the unit of
// the CPU times in /proc/PID/stat. It reads the AT_CLKTCK entry of /proc/self/auxv,
// as the C library does, and falls back to DefaultClockTicks.
func ClockTicks() int64 {
	data, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return DefaultClockTicks
	}
	if hz := parseAuxvClockTicks(data); hz > 0 {
		return hz
	}
	return DefaultClockTicks
}

// parseAuxvClockTicks finds AT_CLKTCK in a 64-bit little-endian auxiliary vector
// (key/value pairs of uint64 ending with AT_NULL); 0 means not found.
func parseAuxvClockTicks(data []byte) int64 {
	for len(data) >= 16 {
		key := binary.LittleEndian.Uint64(data[:8])
		val := binary.LittleEndian.Uint64(data[8:16])
		data = data[16:]
		switch key {
		case 0:
			return 0
		case atClkTck:
			if val == 0 || val > 1_000_000 {
				return 0
			}
			return int64(val)
		}
	}
	return 0
}

// Read returns the usage of process pid so far. The process must still exist (a
// zombie has no memory figures left): read before reaping it.
func Read(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	ticks, err := ParseStatCPUTicks(stat)
	if err != nil {
		return Usage{}, fmt.Errorf("process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	mem, err := ParseStatusMemory(status)
	if err != nil {
		return Usage{}, fmt.Errorf("process %d: %w", pid, err)
	}
	hz := ClockTicks()
	mem.CPU = time.Duration(ticks) * time.Second / time.Duration(hz)
	return mem, nil
}

// ParseStatCPUTicks returns utime + stime, in clock ticks, from the content of
// /proc/PID/stat. The command name (field 2) may hold spaces and parentheses, so
// fields are counted from the last ')'.
func ParseStatCPUTicks(stat []byte) (int64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("malformed /proc stat: no ')' after the command name")
	}
	// After "pid (comm)" come field 3 (state) onwards; utime and stime are fields
	// 14 and 15, so the 12th and 13th after the name.
	fields := bytes.Fields(stat[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the command name, want at least 13", len(fields))
	}
	utime, err := strconv.ParseInt(string(fields[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat utime %q: %w", fields[11], err)
	}
	stime, err := strconv.ParseInt(string(fields[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat stime %q: %w", fields[12], err)
	}
	if utime < 0 || stime < 0 {
		return 0, fmt.Errorf("malformed /proc stat: negative CPU time %d/%d", utime, stime)
	}
	return utime + stime, nil
}

// ParseStatusMemory returns VmHWM and VmRSS (in bytes) from the content of
// /proc/PID/status; CPU is left zero. Both lines are required.
func ParseStatusMemory(status []byte) (Usage, error) {
	var u Usage
	var haveHWM, haveRSS bool
	for line := range bytes.Lines(status) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst, haveHWM = &u.PeakRSS, true
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst, haveRSS = &u.RSS, true
		default:
			continue
		}
		v, err := parseKB(line[6:])
		if err != nil {
			return Usage{}, fmt.Errorf("malformed /proc status line %q: %w", bytes.TrimSpace(line), err)
		}
		*dst = v
	}
	if !haveHWM || !haveRSS {
		return Usage{}, errors.New("/proc status has no VmHWM/VmRSS lines (has the process exited?)")
	}
	return u, nil
}

// parseKB parses "   12345 kB" into bytes.
func parseKB(s []byte) (int64, error) {
	f := bytes.Fields(s)
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0, errors.New(`want "<number> kB"`)
	}
	v, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0, err
	}
	if v < 0 || v > 1<<43 {
		return 0, fmt.Errorf("value %d kB out of range", v)
	}
	return v * 1024, nil
}

// Memory is where a process's resident memory is, from /proc/PID/smaps_rollup.
type Memory struct {
	// RSS is the resident set; Anon the part of it not backed by a file (heap,
	// stacks, runtime structures), File the rest (the mapped executable's text and
	// data, shared libraries).
	RSS, Anon, File int64
}

// ReadMemory reads the resident memory of process pid from /proc/PID/smaps_rollup.
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory map of process %d: %w", pid, err)
	}
	m, err := ParseSmapsRollup(data)
	if err != nil {
		return Memory{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}

// ParseSmapsRollup parses the contents of /proc/PID/smaps_rollup.
func ParseSmapsRollup(data []byte) (Memory, error) {
	var m Memory
	var haveRSS, haveAnon bool
	for line := range bytes.Lines(data) {
		var dst *int64
		var n int
		switch {
		case bytes.HasPrefix(line, []byte("Rss:")):
			dst, n, haveRSS = &m.RSS, 4, true
		case bytes.HasPrefix(line, []byte("Anonymous:")):
			dst, n, haveAnon = &m.Anon, 10, true
		default:
			continue
		}
		v, err := parseKB(line[n:])
		if err != nil {
			return Memory{}, fmt.Errorf("malformed smaps_rollup line %q: %w", bytes.TrimSpace(line), err)
		}
		*dst = v
	}
	if !haveRSS || !haveAnon {
		return Memory{}, errors.New("smaps_rollup has no Rss/Anonymous lines")
	}
	m.File = max(m.RSS-m.Anon, 0)
	return m, nil
}

// LoadAverage returns the machine's 1-, 5- and 15-minute load averages as
// /proc/loadavg gives them ("0.52 0.61 0.70"), or "unknown".
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
