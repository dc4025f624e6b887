package jobs

import (
	"encoding/csv"
	"slices"
	"strings"
	"testing"
)

// TestChunksSplitBetweenRows checks that chunks cut from the upload parse
// back to exactly the file's rows, quoted line breaks and CRLF included,
// whatever the chunk size.
func TestChunksSplitBetweenRows(t *testing.T) {
	file := "\ufeffemail,note\r\na@example.com,\"two\r\nlines\"\r\n\r\nb@example.com,\"say \"\"hi\"\"\"\nc@example.com,\"x,\ny\"\nd@example.com,last"
	want, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(file, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 2, 3, 500} {
		up, err := parseUpload([]byte(file), size)
		if err != nil {
			t.Fatal(err)
		}
		if up.rows != 4 || !slices.Equal(up.headers, []string{"email", "note"}) {
			t.Fatalf("size %d: rows %d headers %q", size, up.rows, up.headers)
		}
		var got [][]string
		next := int64(1)
		for _, c := range up.chunks {
			if c.FirstRow != next {
				t.Errorf("size %d: chunk %d starts at row %d, want %d", size, c.Seq, c.FirstRow, next)
			}
			recs, err := readChunk(c, 2)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if len(recs) != c.Rows {
				t.Errorf("size %d: chunk %d has %d rows, says %d", size, c.Seq, len(recs), c.Rows)
			}
			next += int64(len(recs))
			got = append(got, recs...)
		}
		if !slices.EqualFunc(got, want[1:], slices.Equal[[]string]) {
			t.Errorf("size %d: rows = %q, want %q", size, got, want[1:])
		}
	}
}

func TestInertCells(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+33 1": "'+33 1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)", "\t=1": "'\t=1", "\r=1": "'\r=1", " =1": " =1", "{\"a\":\"=1\"}": "{\"a\":\"=1\"}", "ada": "ada", "": ""} {
		if got := inertCell(in); got != want {
			t.Errorf("inertCell(%q) = %q, want %q", in, got, want)
		}
	}
}
