//go:build wasip1

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sbm-project/sbm/sdk"
)

// The poll command: one round of the Eclipse hawkBit DDI protocol
// (docs/spec/services.md, "examples/updater: the DDI client"; the service
// side is docs/fleet.md), with this project's two additions, named by
// links of the deployment document: "upk", this device's UPK for the
// release, and "reports", where the signed install report goes.

// ddiLink is a DDI hypermedia link.
type ddiLink struct {
	Href string `json:"href"`
}

// ddiController is the answer to GET {base}/{tenant}/controller/v1/{id}.
type ddiController struct {
	Config struct {
		Polling struct {
			Sleep string `json:"sleep"`
		} `json:"polling"`
	} `json:"config"`
	Links map[string]ddiLink `json:"_links"`
}

// ddiDeployment is the answer to GET .../deploymentBase/{actionId}.
type ddiDeployment struct {
	ID         string `json:"id"`
	Deployment struct {
		Chunks []struct {
			Part      string `json:"part"`
			Version   string `json:"version"`
			Name      string `json:"name"`
			Artifacts []struct {
				Filename string             `json:"filename"`
				Size     int64              `json:"size"`
				Links    map[string]ddiLink `json:"_links"`
			} `json:"artifacts"`
		} `json:"chunks"`
	} `json:"deployment"`
	Links map[string]ddiLink `json:"_links"`
}

// ddiFeedback is the body of POST .../deploymentBase/{actionId}/feedback.
type ddiFeedback struct {
	ID     string `json:"id,omitempty"`
	Status struct {
		Execution string `json:"execution"`
		Result    struct {
			Finished string `json:"finished"`
		} `json:"result"`
		Details []string `json:"details,omitempty"`
	} `json:"status"`
}

// ddiTenant is the tenant path element of DDI URLs.
const ddiTenant = "DEFAULT"

// maxDDIAnswer bounds a DDI JSON answer.
const maxDDIAnswer = 64 << 10

// getJSON fetches url and decodes its JSON body into v.
func getJSON(url string, v any) error {
	rc, err := sdk.Open(url)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxDDIAnswer+1))
	if err != nil {
		return err
	}
	if len(b) > maxDDIAnswer {
		return fmt.Errorf("%s: answer larger than %d bytes", url, maxDDIAnswer)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return nil
}

// post sends body to url and discards the answer.
func post(url, contentType string, body []byte) error {
	rc, err := sdk.Post(url, contentType, body)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(rc, maxDDIAnswer))
	return err
}

// feedback posts a DDI action status to url.
func feedback(url, id, execution, finished string, details ...string) error {
	var f ddiFeedback
	f.ID = id
	f.Status.Execution = execution
	f.Status.Result.Finished = finished
	f.Status.Details = details
	b, err := json.Marshal(&f)
	if err != nil {
		return err
	}
	fmt.Printf("poll: feedback %s %s\n", execution, finished)
	return post(url, "application/json", b)
}

// poll runs one DDI round against the service at base (e.g.
// https://fleet.example:8443): ask for work; if a deployment is offered,
// either report it done (its version runs), report it failed (the SBM
// refused the last update), or download its UPK and package into staging
// and request the update (the device resets; poll again after the boot).
func poll(args []string) error {
	if len(args) != 1 {
		return errors.New("want one argument: the service's base URL")
	}
	base := strings.TrimRight(args[0], "/")
	bi, err := sdk.BootInfo()
	if err != nil {
		return err
	}
	var c ddiController
	if err := getJSON(base+"/"+ddiTenant+"/controller/v1/"+bi.DeviceIDString(), &c); err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	dl, ok := c.Links["deploymentBase"]
	if !ok || dl.Href == "" {
		fmt.Printf("poll: nothing to do (sleep %s)\n", c.Config.Polling.Sleep)
		return nil
	}
	var d ddiDeployment
	if err := getJSON(dl.Href, &d); err != nil {
		return fmt.Errorf("poll: deployment: %w", err)
	}
	if len(d.Deployment.Chunks) == 0 || len(d.Deployment.Chunks[0].Artifacts) == 0 || d.ID == "" {
		return errors.New("poll: the deployment names no artifact")
	}
	chunk := d.Deployment.Chunks[0]
	art := chunk.Artifacts[0]
	// The feedback URL: the document's link, else DDI's place for it.
	fbURL := d.Links["feedback"].Href
	if fbURL == "" {
		fbURL = dl.Href
		if i := strings.IndexByte(fbURL, '?'); i >= 0 {
			fbURL = fbURL[:i]
		}
		fbURL += "/feedback"
	}
	reportsURL := d.Links["reports"].Href
	fmt.Printf("poll: action %s offers %s %s\n", d.ID, chunk.Name, chunk.Version)
	switch {
	case chunk.Version == bi.AppVersion:
		detail := "running " + bi.AppVersion
		if bi.LastUpdate == sdk.CodeOK && bi.LastUpdateDetail != "" {
			detail = bi.LastUpdateDetail
		}
		if err := feedback(fbURL, d.ID, "closed", "success", detail); err != nil {
			return fmt.Errorf("poll: feedback: %w", err)
		}
		return postReport(reportsURL)
	case bi.LastUpdate != sdk.CodeOK:
		detail := fmt.Sprintf("refused: %s: %s", bi.LastUpdate, bi.LastUpdateDetail)
		if err := feedback(fbURL, d.ID, "closed", "failure", detail); err != nil {
			return fmt.Errorf("poll: feedback: %w", err)
		}
		return postReport(reportsURL)
	}
	pkgURL := art.Links["download"].Href
	if pkgURL == "" {
		pkgURL = art.Links["download-http"].Href
	}
	if pkgURL == "" {
		return errors.New("poll: the artifact has no download link")
	}
	if err := feedback(fbURL, d.ID, "proceeding", "none", "downloading "+art.Filename); err != nil {
		return fmt.Errorf("poll: feedback: %w", err)
	}
	args = []string{pkgURL}
	if u := d.Links["upk"].Href; u != "" {
		args = append(args, u)
	}
	return update(args)
}

// postReport posts an install report (application/cose, a COSE_Sign1
// from the SBM) to the deployment's reports link; a service without one
// (plain DDI) gets none.
func postReport(url string) error {
	if url == "" {
		fmt.Println("poll: the service takes no reports")
		return nil
	}
	rep, err := sdk.Report(nil)
	if err != nil {
		return fmt.Errorf("poll: report: %w", err)
	}
	if err := post(url, reportContentType, rep); err != nil {
		return fmt.Errorf("poll: report: %w", err)
	}
	fmt.Printf("poll: report sent (%d bytes)\n", len(rep))
	return nil
}
