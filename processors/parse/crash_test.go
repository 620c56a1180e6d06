package parse

import (
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

const (
	goPanic  = "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:5 +0x1d\nexit status 2"
	pyTrace  = "Traceback (most recent call last):\n  File \"/app/x.py\", line 1, in <module>\nKeyError: 'x'"
	javaExc  = "Exception in thread \"main\" java.lang.IllegalStateException: boom\n\tat Main.main(Main.java:5)"
	phpFatal = "PHP Fatal error:  Uncaught Exception: boom in /app/x.php:3\nStack trace:\n#0 {main}\n  thrown in /app/x.php on line 3"
	julHead  = "Dec 06, 2026 9:17:34 AM Main main\nSEVERE: bad quantity\njava.lang.NumberFormatException: x\n\tat Main.main(Main.java:5)"
)

// TestCrashLevel: a multi-line record without a level that holds a stack trace gets
// the level crash_level says; a record with a level keeps it.
func TestCrashLevel(t *testing.T) {
	e, f, w := pipeline.LevelError, pipeline.LevelFatal, pipeline.LevelWarn
	auto := mustNew(t, Config{})
	runLines(t, auto, []lineCase{
		{"go panic is fatal", goPanic, fields{Level: f}},
		{"python traceback is error", pyTrace, fields{Level: e}},
		{"java uncaught is error", javaExc, fields{Level: e}},
		{"php fatal is fatal", phpFatal, fields{Level: f}},
		{"JUL SEVERE header", julHead, fields{Level: e}},
		{"header level wins", "2024-05-01 10:00:00 WARN retrying\n" + pyTrace, fields{Level: w, Time: "2024-05-01T10:00:00Z"}},
		{"single line is no crash", "panic: boom", fields{}},
		{"prose on two lines is no crash", "hello\nworld", fields{}},
	})
	runLines(t, mustNew(t, Config{CrashLevel: CrashLevelFatal}), []lineCase{
		{"fatal for all", pyTrace, fields{Level: f}},
	})
	runLines(t, mustNew(t, Config{CrashLevel: CrashLevelError}), []lineCase{
		{"error for all", goPanic, fields{Level: e}},
	})
	runLines(t, mustNew(t, Config{CrashLevel: CrashLevelNone}), []lineCase{
		{"none", goPanic, fields{}},
	})
	runLines(t, mustNew(t, Config{Format: FormatPlain}), []lineCase{
		{"plain format too", pyTrace, fields{Level: e}},
		{"SEVERE word", "SEVERE: disk full", fields{Level: e}},
		{"CRITICAL word", "x CRITICAL y", fields{Level: f}},
		{"NOTICE word", "[notice] ok", fields{Level: pipeline.LevelInfo}},
	})
}
