package mimecasttest

import (
	"strings"
)

type folderJSON struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Source      string `json:"source"`
	ParentID    string `json:"parentId"`
	UserCount   int    `json:"userCount"`
	FolderCount int    `json:"folderCount"`
}

func (g *group) folder() folderJSON {
	return folderJSON{ID: g.id, Description: g.description, Source: g.source, ParentID: g.parentID, UserCount: len(g.members)}
}

type groupCursor struct {
	Kind   string `json:"k"`
	Query  string `json:"q,omitempty"`
	Source string `json:"s,omitempty"`
	ID     string `json:"id,omitempty"`
	Pos    int    `json:"p"`
}

const (
	codeFolderNotFound = "err_folder_not_found"
	msgFolderNotFound  = "Folder not found"
)

func (s *Server) handleFindGroups(req *apiRequest) (int, []byte) {
	c := groupCursor{Kind: "groups"}
	if req.pageToken != "" {
		if err := decodeToken(req.pageToken, &c); err != nil || c.Kind != "groups" || c.Pos < 0 {
			return badTokenBody(req.pageToken)
		}
	} else {
		item := firstItem(req)
		for _, f := range []string{"query", "source"} {
			v, present, ok := field(item, f)
			if present && (!ok || strings.TrimSpace(v) == "") {
				return okBody([]any{}, []failEntry{blankFail(item, f)}, nil)
			}
		}
		c.Query, _, _ = field(item, "query")
		c.Source, _, _ = field(item, "source")
	}
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	var matched []*group
	for _, g := range s.groups {
		if c.Query != "" && !containsFold(g.description, c.Query) {
			continue
		}
		if c.Source != "" && !strings.EqualFold(g.source, c.Source) {
			continue
		}
		matched = append(matched, g)
	}
	folders := []folderJSON{}
	end := min(len(matched), c.Pos+req.pageSize)
	for i := min(c.Pos, len(matched)); i < end; i++ {
		folders = append(folders, matched[i].folder())
	}
	p := &pagination{PageSize: req.pageSize, TotalCount: len(matched)}
	if end < len(matched) {
		c.Pos = end
		p.Next = encodeToken(c)
	}
	src := c.Source
	if src == "" {
		src = "cloud"
	}
	return okBody([]any{map[string]any{"folders": folders, "source": src, "query": c.Query}}, nil, p)
}

func (s *Server) handleCreateGroup(req *apiRequest) (int, []byte) {
	if len(req.data) == 0 {
		return okBody([]any{}, []failEntry{blankFail(map[string]any{}, "description")}, nil)
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	data := []folderJSON{}
	var fails []failEntry
	for _, item := range req.data {
		desc, _, ok := field(item, "description")
		if !ok || strings.TrimSpace(desc) == "" {
			fails = append(fails, blankFail(item, "description"))
			continue
		}
		parent, present, ok := field(item, "parentId")
		if present && (!ok || parent == "") {
			fails = append(fails, blankFail(item, "parentId"))
			continue
		}
		if !present {
			parent = s.rootID
		} else if _, known := s.groupByID[parent]; !known && parent != s.rootID {
			fails = append(fails, itemFail(item, codeFolderNotFound, msgFolderNotFound))
			continue
		}
		data = append(data, s.newGroup(desc, parent).folder())
	}
	return okBody(data, fails, nil)
}

type memberChange struct {
	ID           string `json:"id"`
	FolderID     string `json:"folderId"`
	EmailAddress string `json:"emailAddress,omitempty"`
	Domain       string `json:"domain,omitempty"`
	Internal     bool   `json:"internal"`
}

// memberItem validates one add/remove item and returns the group and the
// member it names, or the fail entry to report.
func (s *Server) memberItem(item map[string]any) (*group, member, *failEntry) {
	fail := func(f failEntry) (*group, member, *failEntry) { return nil, member{}, &f }
	id, _, ok := field(item, "id")
	if !ok || strings.TrimSpace(id) == "" {
		return fail(blankFail(item, "id"))
	}
	email, emailPresent, eok := field(item, "emailAddress")
	domain, domainPresent, dok := field(item, "domain")
	if !eok || !dok {
		return fail(validationFail(item, "emailAddress", "err_validation_invalid_type", "This field must be a string"))
	}
	var m member
	switch {
	case emailPresent && strings.TrimSpace(email) != "":
		if !validEmail(email) {
			return fail(validationFail(item, "emailAddress", "err_validation_invalid_email_address", "Invalid email address"))
		}
		m.email = strings.ToLower(email)
		m.domain = domainOf(m.email)
	case domainPresent && strings.TrimSpace(domain) != "":
		if strings.ContainsAny(domain, "@ <>") || !strings.Contains(domain, ".") {
			return fail(validationFail(item, "domain", "err_validation_invalid_domain", "Invalid domain"))
		}
		m.domain = strings.ToLower(domain)
	default:
		return fail(blankFail(item, "emailAddress"))
	}
	g, known := s.groupByID[id]
	if !known {
		return fail(itemFail(item, codeFolderNotFound, msgFolderNotFound))
	}
	return g, m, nil
}

func validEmail(e string) bool {
	at := strings.IndexByte(e, '@')
	return at > 0 && at == strings.LastIndexByte(e, '@') && at < len(e)-1 &&
		!strings.ContainsAny(e, " <>,;\"") && strings.Contains(e[at+1:], ".")
}

// changeMembers applies change to every item of an add or remove request
// under the tenant lock: items that do not name a group and a member fail
// here, change fails the rest itself (nil: the item succeeded).
func (s *Server) changeMembers(req *apiRequest, change func(item map[string]any, g *group, m member) (*memberChange, *failEntry)) (int, []byte) {
	if len(req.data) == 0 {
		return okBody([]any{}, []failEntry{blankFail(map[string]any{}, "id")}, nil)
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	data := []memberChange{}
	var fails []failEntry
	for _, item := range req.data {
		g, m, f := s.memberItem(item)
		if f == nil {
			var ch *memberChange
			if ch, f = change(item, g, m); f == nil {
				data = append(data, *ch)
				continue
			}
		}
		fails = append(fails, *f)
	}
	return okBody(data, fails, nil)
}

func (s *Server) handleAddGroupMember(req *apiRequest) (int, []byte) {
	return s.changeMembers(req, func(item map[string]any, g *group, m member) (*memberChange, *failEntry) {
		if m.email != "" {
			i, managed := s.byEmail[m.email]
			if !managed {
				f := itemFail(item, "err_xdk_operation_forbidden_for_address", "0003 Forbidden To Perform Operation For Address")
				return nil, &f
			}
			m.internal, m.name = true, s.users[i].Name
		} else {
			m.internal = m.domain == s.opts.Domain
		}
		if !g.add(m) {
			f := itemFail(item, "err_folder_group_member_already_exists", "Group member already exists")
			return nil, &f
		}
		return &memberChange{ID: memberID(g.id, m.key()), FolderID: g.id, EmailAddress: m.email, Domain: domainIfNoEmail(m), Internal: m.internal}, nil
	})
}

func domainIfNoEmail(m member) string {
	if m.email == "" {
		return m.domain
	}
	return ""
}

func (s *Server) handleRemoveGroupMember(req *apiRequest) (int, []byte) {
	return s.changeMembers(req, func(item map[string]any, g *group, m member) (*memberChange, *failEntry) {
		pos, ok := g.index[m.key()]
		if !ok {
			f := itemFail(item, "err_folder_email_address_not_found", "Error email address not found")
			return nil, &f
		}
		old := g.members[pos]
		g.remove(m.key())
		return &memberChange{ID: memberID(g.id, m.key()), FolderID: g.id, EmailAddress: old.email, Domain: domainIfNoEmail(old), Internal: old.internal}, nil
	})
}

type memberJSON struct {
	EmailAddress string `json:"emailAddress"`
	Domain       string `json:"domain"`
	Internal     bool   `json:"internal"`
	Type         string `json:"type"`
	Name         string `json:"name"`
}

func (s *Server) handleGetGroupMembers(req *apiRequest) (int, []byte) {
	c := groupCursor{Kind: "members"}
	if req.pageToken != "" {
		if err := decodeToken(req.pageToken, &c); err != nil || c.Kind != "members" || c.Pos < 0 {
			return badTokenBody(req.pageToken)
		}
	} else {
		item := firstItem(req)
		id, _, ok := field(item, "id")
		if !ok || strings.TrimSpace(id) == "" {
			return okBody([]any{}, []failEntry{blankFail(item, "id")}, nil)
		}
		c.ID = id
	}
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	g, ok := s.groupByID[c.ID]
	if !ok {
		return okBody([]any{}, []failEntry{itemFail(map[string]any{"id": c.ID}, codeFolderNotFound, msgFolderNotFound)}, nil)
	}
	members := []memberJSON{}
	end := min(len(g.members), c.Pos+req.pageSize)
	for i := min(c.Pos, len(g.members)); i < end; i++ {
		m := g.members[i]
		members = append(members, memberJSON{EmailAddress: m.email, Domain: m.domain, Internal: m.internal, Type: "created_manually", Name: m.name})
	}
	p := &pagination{PageSize: req.pageSize, TotalCount: len(g.members)}
	if end < len(g.members) {
		c.Pos = end
		p.Next = encodeToken(c)
	}
	return okBody([]any{map[string]any{"groupMembers": members}}, nil, p)
}
