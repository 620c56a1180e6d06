// Package stacktrace turns the text of one log record — a message followed by a stack
// trace, as processors/multiline joins it — into structured exceptions the agent can put in
// a Sentry event.
//
// Parse detects the format; ParseGo, ParseJava, ParsePython, ParseNode, ParseRuby,
// ParsePHP, ParseDotnet and ParseDart parse one format each. Trace.Platform names the
// Sentry platform ("csharp" for .NET). Classify tells whether a record without a level
// is crash output, and whether the runtime reported it as fatal. All of them return false when the text holds no stack trace
// (no frame at all), so an ordinary error line never becomes a Sentry exception.
//
// # Input
//
// The text may start with a log prefix (a timestamp, a level, a logger name) before the
// first line of the trace, and may hold a message line before it; both are skipped. When
// the whole text is one JSON object, the trace is taken from its first string field among
// "stack", "stacktrace", "stack_trace", "exception", "exc_info", "error.stack",
// "error.stack_trace", "err.stack", the same names inside an "error", "err" or
// "exception" object, and then "message", "msg" and "log"; a JSON object without such a
// field holds no trace. The record's "msg"/"message" (and zap's "error" string) is put
// on a line before a trace taken from a stack field: it becomes the value of a Go stack
// that has no exception line of its own (zap's "stacktrace" field).
//
// # Sentry ordering
//
// Sentry's exception interface wants chained exceptions "sorted oldest to newest": the
// root cause first and the outermost (most recent, the one that ended the program or was
// logged) last; the issue title comes from the last value. Trace.Exceptions follows that
// order whatever the language prints:
//
//   - Java prints the outermost exception first and each "Caused by:" after it, so the
//     values come out reversed (the deepest cause first). Logback's root-cause-first
//     layout ("Wrapped by:") is read the other way round and gives the same result.
//   - Python prints the oldest exception first ("During handling of the above
//     exception…", "The above exception was the direct cause…"), which is already
//     Sentry's order.
//   - Node prints the outer error first and its "[cause]:" (or pino's "caused by:")
//     nested below; Ruby prints the outer exception first and its cause after the
//     backtrace: both come out reversed.
//   - PHP prints the innermost exception first and each one wrapping it after it
//     ("Next …"), which is Sentry's order. .NET prints the outermost first with its
//     inner exceptions (" ---> ") under it, then the innermost's frames first: the
//     values come out reversed.
//   - Go prints nested panics oldest first ("panic: first [recovered]" then
//     "\tpanic: second"): the last panic is the one that crashed and gets the frames of
//     the crashing goroutine.
//
// Beyond plain chains (Java "Suppressed:" blocks), each Exception also carries the
// tree in Sentry's mechanism terms, numbered the way sentry-go numbers an error chain:
// ExceptionID 0 is the outermost exception, the others are numbered depth first (causes
// before suppressed exceptions), ParentID is the ExceptionID of the exception it hangs
// off (-1 for the outermost) and Source says how ("cause", "suppressed[0]",
// "__context__", "__cause__", "recovered"). Trace.Exceptions is that depth-first list
// reversed, so for a plain chain it is exactly the root-cause-first order above.
//
// Frames are ordered oldest first (the outermost caller first, the crashing function
// last), as Sentry wants, whatever order the language prints them in.
//
// # Go
//
// Go traces are crashes (a panic, fatal error or signal header, then goroutine blocks)
// or, without any goroutine header, function/file line pairs after a message, as zap's
// "stacktrace" field and pkg/errors' "%+v" print them; the type is then "error".
//
// The first goroutine after the panic (or fatal error, or signal) header is the
// crashing one: its frames go to the last exception and its number to ThreadID. Other
// goroutines of a dump become Trace.Threads (at most MaxThreads), so a deadlock report
// still shows what every goroutine was waiting on; the crashing goroutine is not
// repeated there. A "created by" line becomes the oldest frame of its goroutine, since
// it is where the goroutine came from.
//
// # Java frame sharing
//
// "... N more" (and logback's "... N common frames omitted") means the last N frames of
// an exception are the last N frames of the exception enclosing it. They are copied
// from the enclosing exception, so every exception carries its whole stack as Sentry
// SDKs send it, unless the enclosing exception was itself cut at MaxFrames.
//
// # Limits
//
// Work is linear in the input and memory is bounded whatever the input: an exception
// keeps at most MaxFrames frames (the ones nearest the crash: the newest frames), a
// trace at most MaxExceptions exceptions (for Java, Node and Ruby the first ones
// printed, which start from the outermost; for Python and Go's nested panics, which
// print oldest first, the newest ones), a Go dump at
// most MaxThreads other goroutines, and a value at most MaxValueBytes bytes. Strings in
// the result are substrings of the input where possible, so parsing allocates little
// beyond the frame slices; the result therefore keeps the input alive.
//
// The parsers are byte scans, not regular expressions: they run on every error-level
// multiline record, and a crash loop can produce many.
package stacktrace
