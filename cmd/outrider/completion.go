package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// runCompletion prints a completion script for bash, zsh or fish, made from the
// command table, so that it always offers the commands and flags this binary has.
func runCompletion(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "outrider completion: name one shell: bash, zsh or fish")
		return exitUsage
	}
	switch args[0] {
	case "bash":
		writeBash(stdout)
	case "zsh":
		writeZsh(stdout)
	case "fish":
		writeFish(stdout)
	default:
		fmt.Fprintf(stderr, "outrider completion: unknown shell %q; use bash, zsh or fish\n", args[0])
		return exitUsage
	}
	return exitOK
}

// flagInfo is one flag of a command, for completion.
type flagInfo struct {
	name, usage string
	value       bool // takes a value
	file        bool // the value is a path
}

func commandFlags(c *command) []flagInfo {
	if c.flags == nil {
		return []flagInfo{{name: "help", usage: "show help"}}
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(fs)
	var out []flagInfo
	fs.VisitAll(func(f *flag.Flag) {
		fi := flagInfo{name: f.Name, usage: shortUsage(f.Usage), value: true}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			fi.value = false
		}
		for _, s := range []string{"config", "file", "cert", "key", "dir"} {
			if strings.HasSuffix(f.Name, s) {
				fi.file = fi.value
			}
		}
		out = append(out, fi)
	})
	return append(out, flagInfo{name: "help", usage: "show help"})
}

// shortUsage is a flag's usage up to its first ';' or '(' , without characters the
// shells' description syntax treats specially.
func shortUsage(s string) string {
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	return strings.NewReplacer("'", "", "[", "", "]", "", ":", "", "\"", "", "`", "", "$", "", "\\", "").Replace(s)
}

func commandNames() []string {
	var n []string
	for _, c := range commands {
		n = append(n, c.name)
	}
	return n
}

func writeBash(w io.Writer) {
	fmt.Fprintf(w, `# bash completion for outrider; load with: source <(outrider completion bash)
_outrider() {
    local cur prev
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ ${COMP_CWORD} -eq 1 ]]; then
        COMPREPLY=( $(compgen -W "%s" -- "$cur") )
        return 0
    fi
    case "${COMP_WORDS[1]}" in
`, joinWords(commandNames()))
	for _, c := range commands {
		fmt.Fprintf(w, "        %s)\n", c.name)
		var files, values, names []string
		for _, f := range commandFlags(c) {
			names = append(names, "--"+f.name)
			switch {
			case f.file:
				files = append(files, "--"+f.name)
			case f.value:
				values = append(values, "--"+f.name)
			}
		}
		if len(files) > 0 {
			fmt.Fprintf(w, "            case \"$prev\" in %s) COMPREPLY=( $(compgen -f -- \"$cur\") ); return 0 ;; esac\n", strings.Join(files, "|"))
		}
		if len(values) > 0 {
			fmt.Fprintf(w, "            case \"$prev\" in %s) COMPREPLY=(); return 0 ;; esac\n", strings.Join(values, "|"))
		}
		words := append(names, c.words...)
		fmt.Fprintf(w, "            COMPREPLY=( $(compgen -W \"%s\" -- \"$cur\") )\n            ;;\n", joinWords(words))
	}
	fmt.Fprint(w, `    esac
    return 0
}
complete -o default -F _outrider outrider
`)
}

func writeZsh(w io.Writer) {
	fmt.Fprint(w, `#compdef outrider
# zsh completion for outrider; install with: outrider completion zsh > "${fpath[1]}/_outrider"

_outrider() {
    local -a commands
    commands=(
`)
	for _, c := range commands {
		fmt.Fprintf(w, "        '%s:%s'\n", c.name, shortUsage(c.summary))
	}
	fmt.Fprint(w, `    )
    if (( CURRENT == 2 )); then
        _describe 'command' commands
        return
    fi
    local cmd=${words[2]}
    shift words
    (( CURRENT-- ))
    case $cmd in
`)
	for _, c := range commands {
		fmt.Fprintf(w, "        %s)\n            _arguments", c.name)
		for _, f := range commandFlags(c) {
			spec := fmt.Sprintf("--%s[%s]", f.name, f.usage)
			switch {
			case f.file:
				spec += ":path:_files"
			case f.value:
				spec += ":value: "
			}
			fmt.Fprintf(w, " \\\n                '%s'", spec)
		}
		if len(c.words) > 0 {
			fmt.Fprintf(w, " \\\n                '1:argument:(%s)'", joinWords(c.words))
		}
		fmt.Fprint(w, "\n            ;;\n")
	}
	fmt.Fprint(w, `    esac
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _outrider "$@"
else
    compdef _outrider outrider
fi
`)
}

func writeFish(w io.Writer) {
	fmt.Fprintln(w, "# fish completion for outrider; install with: outrider completion fish > ~/.config/fish/completions/outrider.fish")
	fmt.Fprintln(w, "complete -c outrider -f")
	for _, c := range commands {
		fmt.Fprintf(w, "complete -c outrider -n __fish_use_subcommand -a %s -d '%s'\n", c.name, shortUsage(c.summary))
	}
	for _, c := range commands {
		cond := fmt.Sprintf("'__fish_seen_subcommand_from %s'", c.name)
		for _, f := range commandFlags(c) {
			line := fmt.Sprintf("complete -c outrider -n %s -l %s -d '%s'", cond, f.name, f.usage)
			switch {
			case f.file:
				line += " -r -F"
			case f.value:
				line += " -r"
			}
			fmt.Fprintln(w, line)
		}
		if len(c.words) > 0 {
			fmt.Fprintf(w, "complete -c outrider -n %s -a '%s'\n", cond, joinWords(c.words))
		}
	}
}
