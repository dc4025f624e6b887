package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/jobs"
)

// jobRoutes registers the console's bulk work: CSV imports, exports, and
// the jobs that carry them out.
func (s *Server) jobRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /api/imports", s.withToken(auth.WritePeople, s.uploadImport))
	m.HandleFunc("POST /api/imports/{id}/start", s.withToken(auth.WritePeople, s.startImport))
	m.HandleFunc("POST /api/exports", s.withToken(auth.ExportPeople, s.createExport))
	m.HandleFunc("GET /api/jobs", s.withToken(auth.ReadPeople, s.listJobs))
	m.HandleFunc("GET /api/jobs/{id}", s.withToken(auth.ReadPeople, s.getJob))
	// Cancel needs the permission of the job's kind, known once the job
	// is read; people:read lets the caller see it first.
	m.HandleFunc("POST /api/jobs/{id}/cancel", s.withToken(auth.ReadPeople, s.cancelJob))
	m.HandleFunc("GET /api/jobs/{id}/rejections", s.withToken(auth.WritePeople, s.jobRejections))
	m.HandleFunc("GET /api/jobs/{id}/download", s.withToken(auth.ExportPeople, s.downloadJob))
}

// jobPermission is what acting on a job of this kind needs: starting or
// cancelling an import changes people; an export copies them.
func jobPermission(kind string) auth.Permission {
	if kind == jobs.KindExport {
		return auth.ExportPeople
	}
	return auth.WritePeople
}

func (s *Server) uploadImport(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "text/csv" && mt != "application/csv") {
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "Send the file as the body with Content-Type: text/csv."))
		return
	}
	tooLarge := onramp.Errorf(onramp.ETOOLARGE, "The file is larger than the limit of 50 MB; split it into several imports.")
	if r.ContentLength > jobs.MaxUploadBytes {
		s.writeError(w, r, tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, jobs.MaxUploadBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, r, tooLarge)
			return
		}
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "The upload was interrupted; send the file again."))
		return
	}
	up, err := s.Jobs.Upload(r.Context(), jobs.UploadParams{Body: body, CreatedBy: actor(r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/jobs/"+up.Job.ID)
	writeJSON(w, http.StatusCreated, up)
}

func (s *Server) startImport(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Mapping map[string]string `json:"mapping"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err := s.Jobs.Start(r.Context(), jobs.StartParams{JobID: r.PathValue("id"), Mapping: in.Mapping})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "job.import_started", Outcome: auth.OutcomeSuccess,
		Detail: jsonDetail(map[string]any{"job_id": j.ID, "rows": j.RowsTotal})})
	writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) createExport(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Kind   string `json:"kind"`
		Format string `json:"format"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err := s.Jobs.Export(r.Context(), jobs.ExportParams{Target: in.Kind, Format: in.Format, CreatedBy: actor(r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Who took a copy of everyone is worth an audit entry.
	s.audit(r, auth.AuditEntry{Action: "job.export_requested", Outcome: auth.OutcomeSuccess,
		Detail: jsonDetail(map[string]any{"job_id": j.ID, "kind": j.Target, "format": j.Format})})
	w.Header().Set("Location", "/api/jobs/"+j.ID)
	writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q, "limit", 50)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if limit < 1 || limit > 100 {
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "limit must be 1 to 100."))
		return
	}
	js, err := s.Jobs.List(r.Context(), jobs.ListQuery{BeforeID: q.Get("before"), Limit: int(limit)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := map[string]any{"data": nonNilJobs(js)}
	if len(js) == int(limit) {
		out["next"] = js[len(js)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func nonNilJobs(js []*jobs.Job) []*jobs.Job {
	if js == nil {
		return []*jobs.Job{}
	}
	return js
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.Jobs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.Jobs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if perm := jobPermission(j.Kind); !auth.Allows(callerRole(r), perm) {
		s.writeError(w, r, onramp.Errorf(onramp.EFORBIDDEN, "The %s role may not cancel an %s (%s).", callerRole(r), j.Kind, perm))
		return
	}
	j, err = s.Jobs.Cancel(r.Context(), j.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) jobRejections(w http.ResponseWriter, r *http.Request) {
	j, err := s.Jobs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if j.Kind != jobs.KindImport {
		s.writeError(w, r, onramp.Errorf(onramp.ECONFLICT, "Job %s is an export; only imports reject rows.", j.ID))
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="rejected-`+j.ID+`.csv"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := s.Jobs.WriteRejections(r.Context(), j, w); err != nil {
		s.streamFailed(r, err)
	}
}

func (s *Server) downloadJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.Jobs.Get(r.Context(), r.PathValue("id"))
	if err == nil {
		err = jobs.CheckDownload(j)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ct := "application/x-ndjson"
	if j.Format == jobs.FormatCSV {
		ct = "text/csv; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", `attachment; filename="`+jobs.FileName(j)+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Onramp-Rows", strconv.FormatInt(j.RowsDone, 10))
	if err := s.Jobs.WriteOutput(r.Context(), j, w); err != nil {
		s.streamFailed(r, err)
	}
}

// streamFailed ends a download that failed after its first bytes: the
// status is sent, so only cutting the connection tells the client the
// file is incomplete.
func (s *Server) streamFailed(r *http.Request, err error) {
	if r.Context().Err() == nil {
		s.log.ErrorContext(r.Context(), "job file stream failed", "err", err, "request_id", requestID(r.Context()))
	}
	panic(http.ErrAbortHandler)
}
