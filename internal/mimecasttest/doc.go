// Package mimecasttest is a strict, standard-library-only emulator of the
// Mimecast API used by mimecast-ure (see /work/shared/spec/mimecast-api.md).
// It never imports the client it tests.
//
// # Construction
//
//	s := mimecasttest.New(mimecasttest.Options{Users: 100, Seed: 1})   // an http.Handler
//	s := mimecasttest.NewTestServer(t, opts)                             // httptest + t.Cleanup; base URL s.URL()
//
// Credentials default to DefaultAppID, DefaultAppKey, DefaultAccessKey,
// DefaultSecretKey (standard base64), DefaultClientID, DefaultClientSecret.
// Options: Users, Seed, Domain, the six credentials, Latency, Now, Sleep,
// MaxSkew (15m), TokenTTL (1799s), RateLimit{Capacity, Refill} (off when
// Capacity is 0; per-path overrides in EndpointRateLimits), PageCap (500),
// DefaultPageSize (100), Groups (6),
// NoAwarenessPackage, LogVolume (map kind -> count; nil = 500 each),
// LogEnd, LogWindow (7 days), ReplayIDs (200,000).
//
// # Endpoints (all POST; other methods 405, unknown paths 404)
//
//	/oauth/token                                          form client_id, client_secret, grant_type=client_credentials
//	/api/account/get-account                              data[0] = account; packages include "Awareness Training [1078]"
//	/api/awareness-training/company/get-safe-score-details one user per data[] item; filterBy type / searchBy email|name|department
//	/api/awareness-training/company/get-safe-score-summary data[0].scoreCounts
//	/api/directory/find-groups                            data[0] = {folders, source, query}; query = name substring
//	/api/directory/create-group                           data[] = new folders
//	/api/directory/add-group-member                       per-item data[] / fail[] (key echoes the item)
//	/api/directory/remove-group-member                    per-item data[] / fail[]
//	/api/directory/get-group-members                      data[0].groupMembers
//	/api/ttp/url/get-logs                                 data[0].clickLogs          (from, to, oldestFirst, route, scanResult)
//	/api/ttp/attachment/get-logs                          data[0].attachmentLogs     (from, to, oldestFirst, route, result)
//	/api/ttp/impersonation/get-logs                       data[0].impersonationLogs + resultCount (taggedMalicious, identifiers, actions, searchField/query)
//	/api/dlp/get-logs                                     data[0].dlpLogs            (routes, actions, searchField/query)
//	GET /_emulator/stats, POST /_emulator/stats/reset      call counts, no auth
//
// Every /api/ endpoint accepts API 1.0 (HMAC) and API 2.0 (Bearer) auth.
// List endpoints page with meta.pagination {pageSize, totalCount, next};
// next is absent on the last page; page sizes above PageCap are clamped and
// the size used is echoed. Page tokens are opaque, carry the whole query, and
// work without resending data.
//
// # Refusals
//
//	missing Authorization / x-mc-app-id / x-mc-date / x-mc-req-id  400 err_xdk_missing_credentials "0001 Credentials Missing From Request"
//	scheme other than MC / Bearer                                    401 err_xdk_authentication_type_not_supported "0001 ..."
//	unknown app id                                                   401 err_developer_key
//	unknown access key                                               401 err_xdk_invalid_access_key
//	x-mc-date not exactly "Mon, 02 Jan 2006 15:04:05 UTC"            401 err_xdk_invalid_date
//	x-mc-date more than MaxSkew from Now                             401 err_xdk_date_header_too_skewed "Date Header Too Skewed"
//	wrong signature                                                  401 err_xdk_invalid_signature "0004 Invalid Signature"
//	x-mc-req-id already used (case-insensitive, within the window)   401 err_xdk_request_id_reused
//	unknown bearer / expired bearer                                  401 err_xdk_invalid_token / err_xdk_token_expired
//	/oauth/token bad client                                          401 {"error":"invalid_client"} (RFC 6749 shape)
//
// Per-item failures (HTTP 200, meta.status 200): err_validation_blank (with
// field), err_validation_invalid_email_address, err_folder_not_found (unknown
// group id; code invented, unknown in the spec),
// err_xdk_operation_forbidden_for_address ("0003 Forbidden To Perform
// Operation For Address": address not in the directory),
// err_folder_group_member_already_exists, err_folder_email_address_not_found,
// err_validation_invalid_page_token (field pageToken).
//
// # Test API
//
//	Users() []User; User(email) (User, bool); SetGrade(email, grade) bool; AddUser(User); RemoveUser(email) bool
//	Groups() []Group; FindGroupByName(name) (Group, bool); CreateGroup(name) Group
//	GroupMembers(groupID) []string; AddGroupMember(groupID, email) bool; RemoveGroupMember(groupID, email) bool
//	AddLogRecords(kind, recs ...map[string]any); LogCount(kind) int; GeneratedLogRecord(kind, i) (map[string]any, bool)
//	LogRecords(kind, from, to) []map[string]any; LogWindow() (start, end time.Time)
//	SetFaults(Faults); ClearFaults(); Faults() Faults; RevokeTokens()
//	Stats() map[string]int; Calls(path) int; ResetStats(); URL(); Domain(); Options()
//	Sign(accessKey, secretKey, appKey, date, reqID, path) (string, error)   // reference signer
//
// Faults: Endpoint, Latency, ErrorRate, FailNext, ErrorStatus (503),
// RateLimitNext, RateLimitResetMS (1000), SlowNext, SlowBy, TruncateNext,
// AbortNext, BindingExpireAfter. Refusals (5xx, 429, 418) are decided after
// authentication and before the endpoint runs, so they never apply a write;
// truncated and aborted replies are cut after the endpoint ran, so their
// write HAS been applied.
//
// # Synthetic tenant
//
// Users are first.last@<domain> (unique case-insensitively; every 97th keeps
// mixed case), the first five graded A B C D F, the rest drawn from the seed;
// groups include Finance, Engineering, Sales (department members),
// Executives, an empty "Risky Users - Remediation", Contractors (with an
// external member). Log records are generated lazily from (seed, kind, index),
// spread evenly over LogWindow, so a million records cost no memory; they
// cover every rule of detection-rules.md (clicks per category with
// block/warn, Entry Scan outbound malicious URLs from internal senders,
// malicious files inbound/outbound/internal, impersonation holds per
// identifier, DLP blocks and hold+notification pairs sharing a messageId).
// Time filters: from inclusive, to exclusive, both layouts accepted; the
// default range is the start of today (UTC) up to and including now.
package mimecasttest
