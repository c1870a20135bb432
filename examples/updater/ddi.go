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
// (docs/spec/services.md, "examples/updater: the DDI client"), with this
// project's two additions: an artifact link "upk" to this device's UPK,
// and the signed install report posted next to the feedback.

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

// feedback posts a DDI action status.
func feedback(actionURL, id, execution, finished string, details ...string) error {
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
	return post(actionURL+"/feedback", "application/json", b)
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
	actionURL := dl.Href
	if i := strings.IndexByte(actionURL, '?'); i >= 0 {
		actionURL = actionURL[:i]
	}
	fmt.Printf("poll: action %s offers %s %s\n", d.ID, chunk.Name, chunk.Version)
	switch {
	case chunk.Version == bi.AppVersion:
		detail := "running " + bi.AppVersion
		if bi.LastUpdate == sdk.CodeOK && bi.LastUpdateDetail != "" {
			detail = bi.LastUpdateDetail
		}
		if err := feedback(actionURL, d.ID, "closed", "success", detail); err != nil {
			return fmt.Errorf("poll: feedback: %w", err)
		}
		return sendActionReport(actionURL)
	case bi.LastUpdate != sdk.CodeOK:
		detail := fmt.Sprintf("refused: %s: %s", bi.LastUpdate, bi.LastUpdateDetail)
		if err := feedback(actionURL, d.ID, "closed", "failure", detail); err != nil {
			return fmt.Errorf("poll: feedback: %w", err)
		}
		return sendActionReport(actionURL)
	}
	pkgURL := art.Links["download"].Href
	if pkgURL == "" {
		pkgURL = art.Links["download-http"].Href
	}
	if pkgURL == "" {
		return errors.New("poll: the artifact has no download link")
	}
	if err := feedback(actionURL, d.ID, "proceeding", "none", "downloading "+art.Filename); err != nil {
		return fmt.Errorf("poll: feedback: %w", err)
	}
	args = []string{pkgURL}
	if u := art.Links["upk"].Href; u != "" {
		args = append(args, u)
	}
	return update(args)
}

// sendActionReport posts an install report for the action at actionURL
// (application/cose, a COSE_Sign1 from the SBM) to actionURL/report.
func sendActionReport(actionURL string) error {
	rep, err := sdk.Report(nil)
	if err != nil {
		return fmt.Errorf("poll: report: %w", err)
	}
	if err := post(actionURL+"/report", reportContentType, rep); err != nil {
		return fmt.Errorf("poll: report: %w", err)
	}
	fmt.Printf("poll: report sent (%d bytes)\n", len(rep))
	return nil
}
