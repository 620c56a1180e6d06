package procstat

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPUTicks(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    int64
		wantErr bool
	}{
		{
			name: "plain",
			stat: "1234 (otelcol) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 12 0 4242 100000 2000 18446744073709551615\n",
			want: 287,
		},
		{
			name: "name with spaces and parentheses",
			stat: "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1\n",
			want: 11,
		},
		{name: "no name", stat: "77 R 1 2 3", wantErr: true},
		{name: "too short", stat: "77 (x) R 1 2 3 4 5 6 7 8 9 10", wantErr: true},
		{name: "not a number", stat: "77 (x) R 1 77 77 0 -1 0 0 0 0 0 x 6 0", wantErr: true},
		{name: "negative", stat: "77 (x) R 1 77 77 0 -1 0 0 0 0 0 -5 6 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatCPUTicks([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ticks = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseStatusMemory(t *testing.T) {
	const full = "Name:\totelcol\nVmPeak:\t 1000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n"
	tests := []struct {
		name     string
		status   string
		wantHWM  int64
		wantRSS  int64
		wantFail bool
	}{
		{name: "full", status: full, wantHWM: 20480 << 10, wantRSS: 10240 << 10},
		{name: "zombie", status: "Name:\tx\nState:\tZ (zombie)\n", wantFail: true},
		{name: "only HWM", status: "VmHWM:\t 1 kB\n", wantFail: true},
		{name: "bad unit", status: "VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n", wantFail: true},
		{name: "bad number", status: "VmHWM:\t x kB\nVmRSS:\t 1 kB\n", wantFail: true},
		{name: "no trailing newline", status: "VmRSS:\t 2 kB\nVmHWM:\t 3 kB", wantHWM: 3 << 10, wantRSS: 2 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatusMemory([]byte(tt.status))
			if (err != nil) != tt.wantFail {
				t.Fatalf("err = %v, wantFail %v", err, tt.wantFail)
			}
			if got.PeakRSS != tt.wantHWM || got.RSS != tt.wantRSS {
				t.Errorf("got HWM %d RSS %d, want %d %d", got.PeakRSS, got.RSS, tt.wantHWM, tt.wantRSS)
			}
		})
	}
}

func auxv(pairs ...uint64) []byte {
	b := make([]byte, 0, 8*len(pairs))
	for _, v := range pairs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func TestParseAuxvClockTicks(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want int64
	}{
		{name: "found", data: auxv(6, 4096, atClkTck, 250, 0, 0), want: 250},
		{name: "after null", data: auxv(6, 4096, 0, 0, atClkTck, 250), want: 0},
		{name: "absent", data: auxv(6, 4096, 0, 0), want: 0},
		{name: "zero value", data: auxv(atClkTck, 0), want: 0},
		{name: "truncated", data: auxv(atClkTck)[:8], want: 0},
		{name: "empty", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseAuxvClockTicks(tt.data); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestClockTicksMatchesKernel(t *testing.T) {
	if _, err := os.Stat("/proc/self/auxv"); err != nil {
		t.Skip("no /proc on this system")
	}
	data, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		t.Fatal(err)
	}
	if parseAuxvClockTicks(data) == 0 {
		t.Fatal("AT_CLKTCK not found in /proc/self/auxv")
	}
	if hz := ClockTicks(); hz <= 0 {
		t.Fatalf("ClockTicks() = %d", hz)
	}
}

// TestReadSelf reads this test process: burning CPU must show up in CPU, and
// touching memory must raise the high-water mark.
func TestReadSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	pid := os.Getpid()
	before, err := Read(pid)
	if err != nil {
		t.Fatalf("Read(self): %v", err)
	}
	if before.RSS <= 0 || before.PeakRSS < before.RSS {
		t.Fatalf("implausible memory: %+v", before)
	}

	deadline := time.Now().Add(20 * time.Second)
	x := uint64(1)
	for {
		for i := 0; i < 1_000_000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		now, err := Read(pid)
		if err != nil {
			t.Fatal(err)
		}
		if now.CPU > before.CPU {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time did not advance while burning CPU (before %v, now %v, x %d)", before.CPU, now.CPU, x)
		}
	}

	const grow = 64 << 20
	buf := make([]byte, grow)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	after, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after.PeakRSS < before.RSS+grow*3/4 {
		t.Errorf("peak RSS %d after touching %d bytes, RSS before was %d", after.PeakRSS, grow, before.RSS)
	}
	if buf[4096] != 1 {
		t.Fatal("buffer lost")
	}
}

func TestReadMissingProcess(t *testing.T) {
	_, err := Read(1 << 30)
	if err == nil || !strings.Contains(err.Error(), "process") {
		t.Fatalf("err = %v, want an error naming the process", err)
	}
}

func FuzzParseStatCPUTicks(f *testing.F) {
	f.Add([]byte("1234 (otelcol) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 12 0 4242 100000 2000\n"))
	f.Add([]byte("77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 5 6 0"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ticks, err := ParseStatCPUTicks(data)
		if err == nil && ticks < 0 {
			t.Fatalf("negative ticks %d without error", ticks)
		}
	})
}

func FuzzParseStatusMemory(f *testing.F) {
	f.Add([]byte("Name:\tx\nVmHWM:\t 20480 kB\nVmRSS:\t 10240 kB\n"))
	f.Add([]byte("VmHWM: 1 kB\nVmRSS:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseStatusMemory(data)
		if err == nil && (u.PeakRSS < 0 || u.RSS < 0) {
			t.Fatalf("negative memory %+v without error", u)
		}
	})
}

func TestParseSmapsRollup(t *testing.T) {
	tests := []struct {
		name, data string
		want       Memory
		wantErr    bool
	}{
		{name: "kernel format", data: "559e00bcb000-7ffc23473000 ---p 00000000 00:00 0   [rollup]\nRss:                1820 kB\nPss:                 372 kB\nAnonymous:           116 kB\nSwap:                  0 kB\n",
			want: Memory{RSS: 1820 << 10, Anon: 116 << 10, File: (1820 - 116) << 10}},
		{name: "no anonymous line", data: "Rss: 10 kB\n", wantErr: true},
		{name: "bad number", data: "Rss: x kB\nAnonymous: 1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSmapsRollup([]byte(tt.data))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSmapsRollup = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReadMemorySelf(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Anon <= 0 || m.Anon+m.File != m.RSS {
		t.Errorf("ReadMemory(self) = %+v", m)
	}
}

func TestLoadAverage(t *testing.T) {
	got := LoadAverage()
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		if got != "unknown" {
			t.Fatalf("LoadAverage() = %q without /proc/loadavg", got)
		}
		return
	}
	f := strings.Fields(got)
	if len(f) != 3 {
		t.Fatalf("LoadAverage() = %q, want three numbers", got)
	}
	for _, s := range f {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			t.Fatalf("LoadAverage() = %q: %v", got, err)
		}
	}
}
