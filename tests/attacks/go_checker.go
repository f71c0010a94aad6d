// An independent verifier for tests/attacks/test_go_interop.py, built on Go's reference
// implementations golang.org/x/mod/sumdb/note (signed notes) and golang.org/x/mod/sumdb/tlog
// (RFC 6962 inclusion and consistency proofs).
//
// It reads a JSON array of cases on stdin and writes a JSON array of results on stdout, one per
// case: "ok", or the error Go reported. For "sign" the result is the note Go signed.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type testCase struct {
	Op     string   `json:"op"`     // "note", "inclusion", "consistency" or "sign"
	Key    string   `json:"key"`    // verifier key (note) or signer key (sign)
	Note   string   `json:"note"`   // the signed note to open
	Text   string   `json:"text"`   // the text to sign
	Size   int64    `json:"size"`   // tree size the proof is for
	Root   string   `json:"root"`   // base64 root of that tree
	Index  int64    `json:"index"`  // leaf index (inclusion)
	Leaf   string   `json:"leaf"`   // base64 leaf bytes (inclusion)
	Old    int64    `json:"old"`    // older tree size (consistency)
	OldRt  string   `json:"oldroot"` // base64 root of the older tree (consistency)
	Proof  []string `json:"proof"`  // base64 proof hashes
}

func hash(b64 string) (tlog.Hash, error) {
	var h tlog.Hash
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return h, err
	}
	if len(raw) != tlog.HashSize {
		return h, fmt.Errorf("hash is %d bytes", len(raw))
	}
	copy(h[:], raw)
	return h, nil
}

func hashes(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := hash(s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// openCheckpoint verifies the note and returns "ok <origin> <size> <root>" from its text.
func openCheckpoint(c testCase) (string, error) {
	verifier, err := note.NewVerifier(c.Key)
	if err != nil {
		return "", err
	}
	n, err := note.Open([]byte(c.Note), note.VerifierList(verifier))
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return "", fmt.Errorf("checkpoint has %d lines", len(lines))
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return "", err
	}
	if _, err := hash(lines[2]); err != nil {
		return "", err
	}
	return fmt.Sprintf("ok %s\n%d\n%s", lines[0], size, lines[2]), nil
}

func run(c testCase) (string, error) {
	switch c.Op {
	case "note":
		return openCheckpoint(c)
	case "sign":
		signer, err := note.NewSigner(c.Key)
		if err != nil {
			return "", err
		}
		signed, err := note.Sign(&note.Note{Text: c.Text}, signer)
		return string(signed), err
	case "inclusion":
		root, err := hash(c.Root)
		if err != nil {
			return "", err
		}
		leaf, err := base64.StdEncoding.DecodeString(c.Leaf)
		if err != nil {
			return "", err
		}
		proof, err := hashes(c.Proof)
		if err != nil {
			return "", err
		}
		return "ok", tlog.CheckRecord(proof, c.Size, root, c.Index, tlog.RecordHash(leaf))
	case "consistency":
		root, err := hash(c.Root)
		if err != nil {
			return "", err
		}
		old, err := hash(c.OldRt)
		if err != nil {
			return "", err
		}
		proof, err := hashes(c.Proof)
		if err != nil {
			return "", err
		}
		return "ok", tlog.CheckTree(proof, c.Size, root, c.Old, old)
	}
	return "", fmt.Errorf("unknown op %q", c.Op)
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "bad input:", err)
		os.Exit(2)
	}
	results := make([]string, len(cases))
	for i, c := range cases {
		out, err := run(c)
		if err != nil {
			out = "error: " + err.Error()
		}
		results[i] = out
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(2)
	}
}
