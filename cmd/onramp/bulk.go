package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/jobs"
)

// cliJobCreator names the command line as the creator of its jobs.
const cliJobCreator = "system:cli"

// runJobHere runs one job in this process until it ends, with ingest
// committing beside it, reporting progress on stderr. If a server shares
// the data, its runner may take the job instead; this waits for it then.
func runJobHere(ctx context.Context, a *app, id string) (*jobs.Job, error) {
	evCtx, stopEvents := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.events.Run(evCtx) }()
	defer func() { stopEvents(); wg.Wait() }()

	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	done := make(chan struct{})
	defer close(done)
	// Progress overwrites one line, which only a terminal shows as such.
	fi, _ := os.Stderr.Stat()
	tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	go func() {
		if !tty {
			return
		}
		for {
			select {
			case <-done:
				return
			case <-progress.C:
				if j, err := a.jobs.Get(ctx, id); err == nil {
					fmt.Fprintf(os.Stderr, "\r%s %s: %d/%d rows, %d rejected", j.Kind, j.Status, j.RowsDone, j.RowsTotal, j.RowsRejected)
				}
			}
		}
	}()
	j, err := a.jobs.NewRunner(jobs.RunnerConfig{}).RunJob(ctx, id)
	if tty {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return j, err
	}
	if j.Status == jobs.StatusFailed {
		return j, fmt.Errorf("%s %s failed: %s", j.Kind, j.ID, j.Error)
	}
	if j.Status == jobs.StatusCancelled {
		return j, fmt.Errorf("%s %s was cancelled", j.Kind, j.ID)
	}
	return j, nil
}

func runImportPeople(ctx context.Context, args []string, out io.Writer) error {
	var maps multiFlag
	var rejections string
	var asJSON bool
	a, pos, err := cliApp(ctx, "import people", commands()["import people"].usage, args, func(fs *flag.FlagSet) {
		fs.Var(&maps, "map", "HEADER=TARGET: map a column to identifier:email, identifier:user_id, identifier:phone, identifier:external:<type>, trait:<name> or ignore (repeatable; unmapped columns are ignored)")
		fs.StringVar(&rejections, "rejections", "", "write the rejected rows (row, reason, columns) to this CSV file")
		fs.BoolVar(&asJSON, "json", false, "print the finished job as JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if len(pos) != 1 {
		fmt.Fprintf(os.Stderr, "Usage: onramp %s\n", commands()["import people"].usage)
		return errUsage
	}
	mapping := map[string]string{}
	for _, m := range maps {
		h, t, ok := strings.Cut(m, "=")
		if !ok {
			return onramp.Errorf(onramp.EINVALID, "--map %q: write HEADER=TARGET, e.g. --map email=identifier:email", m)
		}
		mapping[h] = t
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(f, jobs.MaxUploadBytes+1))
	f.Close()
	if err != nil {
		return err
	}
	up, err := a.jobs.Upload(ctx, jobs.UploadParams{Body: body, CreatedBy: cliJobCreator})
	if err != nil {
		return err
	}
	if _, err := a.jobs.Start(ctx, jobs.StartParams{JobID: up.Job.ID, Mapping: mapping}); err != nil {
		// Leave no upload behind that nobody will start.
		_, _ = a.jobs.Cancel(context.WithoutCancel(ctx), up.Job.ID)
		return err
	}
	start := time.Now()
	j, err := runJobHere(ctx, a, up.Job.ID)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: import %s keeps its progress and resumes when `onramp serve` runs", up.Job.ID)
		}
		return err
	}
	if rejections != "" && j.RowsRejected > 0 {
		if err := writeFile(rejections, func(w io.Writer) error { return a.jobs.WriteRejections(ctx, j, w) }); err != nil {
			return err
		}
	}
	if asJSON {
		return printJSON(out, j)
	}
	d := time.Since(start)
	fmt.Fprintf(out, "Imported %d rows of %s in %s (%.0f rows/s): %d rejected. Job %s.\n",
		j.RowsDone-j.RowsRejected, pos[0], d.Round(time.Millisecond), float64(j.RowsDone)/d.Seconds(), j.RowsRejected, j.ID)
	if j.RowsRejected > 0 && rejections == "" {
		fmt.Fprintln(out, "Run again with --rejections FILE, or GET /api/jobs/"+j.ID+"/rejections, to see why.")
	}
	return nil
}

func runExportPeople(ctx context.Context, args []string, out io.Writer) error {
	return runExport(ctx, jobs.TargetPeople, args, out)
}

func runExportEvents(ctx context.Context, args []string, out io.Writer) error {
	return runExport(ctx, jobs.TargetEvents, args, out)
}

func runExport(ctx context.Context, target string, args []string, out io.Writer) error {
	name := "export " + target
	var format, output string
	a, _, err := cliApp(ctx, name, commands()[name].usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", jobs.FormatNDJSON, "ndjson or csv")
		fs.StringVar(&output, "output", "", "write to this file instead of standard output")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	j, err := a.jobs.Export(ctx, jobs.ExportParams{Target: target, Format: format, CreatedBy: cliJobCreator})
	if err != nil {
		return err
	}
	if j, err = runJobHere(ctx, a, j.ID); err != nil {
		return err
	}
	write := func(w io.Writer) error { return a.jobs.WriteOutput(ctx, j, w) }
	if output != "" {
		if err := writeFile(output, write); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "Exported %d %s to %s.\n", j.RowsDone, target, output)
		return nil
	}
	bw := bufio.NewWriterSize(out, 1<<16)
	if err := write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := fn(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
