package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// StartRollout starts a rollout of a published release (by version or
// manifest digest) to a share of the fleet.
func (cl *Client) StartRollout(ctx context.Context, req *RolloutRequest) (*RolloutStatus, error) {
	return cl.rolloutCall(ctx, "/v1/rollouts", req)
}

// SetRolloutPercent raises a rollout's share of the fleet (it never
// shrinks).
func (cl *Client) SetRolloutPercent(ctx context.Context, id string, percent float64) (*RolloutStatus, error) {
	return cl.rolloutCall(ctx, "/v1/rollouts/"+url.PathEscape(id)+"/percent", &PercentRequest{Percent: percent})
}

// PauseRollout stops offering a running rollout to more devices.
func (cl *Client) PauseRollout(ctx context.Context, id string) (*RolloutStatus, error) {
	return cl.rolloutCall(ctx, "/v1/rollouts/"+url.PathEscape(id)+"/pause", nil)
}

// ResumeRollout resumes a paused or halted rollout.
func (cl *Client) ResumeRollout(ctx context.Context, id string) (*RolloutStatus, error) {
	return cl.rolloutCall(ctx, "/v1/rollouts/"+url.PathEscape(id)+"/resume", nil)
}

// AbortRollout stops a rollout for good: its open actions are cancelled.
func (cl *Client) AbortRollout(ctx context.Context, id string) (*RolloutStatus, error) {
	return cl.rolloutCall(ctx, "/v1/rollouts/"+url.PathEscape(id)+"/abort", nil)
}

func (cl *Client) rolloutCall(ctx context.Context, path string, body any) (*RolloutStatus, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	var st RolloutStatus
	if err := cl.do(ctx, http.MethodPost, path, "application/json", b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Rollouts lists every rollout, oldest first.
func (cl *Client) Rollouts(ctx context.Context) ([]RolloutStatus, error) {
	var list RolloutList
	if err := cl.do(ctx, http.MethodGet, "/v1/rollouts", "", nil, &list); err != nil {
		return nil, err
	}
	return list.Rollouts, nil
}

// Rollout returns one rollout's status.
func (cl *Client) Rollout(ctx context.Context, id string) (*RolloutStatus, error) {
	var st RolloutStatus
	if err := cl.do(ctx, http.MethodGet, "/v1/rollouts/"+url.PathEscape(id), "", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Fleet returns the state of every certified device, page by page.
func (cl *Client) Fleet(ctx context.Context) ([]FleetDevice, error) {
	var all []FleetDevice
	after := ""
	for {
		var page FleetList
		if err := cl.do(ctx, http.MethodGet, "/v1/fleet?after="+url.QueryEscape(after)+"&limit="+strconv.Itoa(maxFleetPage), "", nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Devices...)
		if page.Next == "" {
			return all, nil
		}
		after = page.Next
	}
}

// RevokeDevice refuses a device on the update service from now on.
func (cl *Client) RevokeDevice(ctx context.Context, id string) (*FleetDevice, error) {
	var d FleetDevice
	if err := cl.do(ctx, http.MethodPost, "/v1/fleet/"+url.PathEscape(id)+"/revoke", "", nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
