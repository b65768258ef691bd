package mimecasttest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// User is one synthetic awareness-training user, the fields of
// get-safe-score-details. Risk is the overall SAFE grade.
type User struct {
	Email      string `json:"emailAddress"`
	Name       string `json:"name"`
	Risk       string `json:"risk"`
	HumanError string `json:"humanError"`
	Sentiment  string `json:"sentiment"`
	Engagement string `json:"engagement"`
	Knowledge  string `json:"knowledge"`
	Department string `json:"department"`
	UserState  string `json:"userState"`
}

// Group is one profile group (a Mimecast "folder"); Name is its description.
type Group struct {
	ID        string
	Name      string
	Source    string
	ParentID  string
	UserCount int
}

type userRec struct {
	User
	js []byte // pre-encoded JSON object, so a page of 500 users is cheap
}

type member struct {
	email    string // lower-case; "" for a domain entry
	domain   string
	internal bool
	name     string
}

func (m member) key() string {
	if m.email != "" {
		return m.email
	}
	return "@" + m.domain
}

type group struct {
	id, description, source, parentID string
	members                           []member
	index                             map[string]int // member key -> position in members
}

func (g *group) add(m member) bool {
	k := m.key()
	if _, ok := g.index[k]; ok {
		return false
	}
	g.index[k] = len(g.members)
	g.members = append(g.members, m)
	return true
}

func (g *group) remove(k string) bool {
	pos, ok := g.index[k]
	if !ok {
		return false
	}
	delete(g.index, k)
	copy(g.members[pos:], g.members[pos+1:])
	g.members = g.members[:len(g.members)-1]
	for i := pos; i < len(g.members); i++ {
		g.index[g.members[i].key()] = i
	}
	return true
}

func (g *group) public() Group {
	return Group{ID: g.id, Name: g.description, Source: g.source, ParentID: g.parentID, UserCount: len(g.members)}
}

var grades = []string{"A", "B", "C", "D", "F"}

var firstNames = []string{
	"Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Grace", "Hector", "Ivy", "Jamal",
	"Kay", "Liam", "Maya", "Noah", "Olivia", "Priya", "Quinn", "Rosa", "Sam", "Tara",
	"Umar", "Vera", "Wes", "Xin", "Yusuf", "Zoe", "Aaron", "Bianca", "Chen", "Diego",
	"Elena", "Farah", "Gus", "Hana", "Igor", "Jade", "Kenji", "Lena", "Mateo", "Nina",
	"Oscar", "Paula", "Rafael", "Sofia", "Theo", "Uma", "Victor", "Wanda", "Yara", "Zane",
	"Amir", "Beth", "Cyrus", "Dara", "Emil", "Fiona", "Gwen", "Hugo", "Iris", "Jon",
}

var lastNames = []string{
	"Archer", "Baker", "Cho", "Diaz", "Evans", "Fox", "Garcia", "Hughes", "Ito", "Jensen",
	"Khan", "Lopez", "Mann", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi", "Smith", "Tanaka",
	"Ueda", "Vargas", "Walsh", "Xu", "Young", "Zhang", "Abbott", "Brennan", "Costa", "Dubois",
	"Eriksen", "Fischer", "Gallo", "Hansen", "Iqbal", "Jovanovic", "Kowalski", "Larsen", "Moreau", "Novak",
	"Olsen", "Park", "Reyes", "Schmidt", "Torres", "Usman", "Vidal", "Weber", "Yilmaz", "Zimmer",
	"Adler", "Bauer", "Clarke", "Doyle", "Ellis", "Ford", "Grant", "Hale", "Irwin", "Keller",
}

var departments = []string{
	"Finance", "Engineering", "Sales", "Marketing", "HR", "Legal", "IT", "Operations", "Customer Support", "Executive",
}

// departmentWeights make executives and lawyers rarer than engineers.
var departmentWeights = []int{12, 20, 16, 10, 6, 4, 8, 10, 12, 2}

// defaultGroupNames are the pre-made groups, in order; the first three take
// the members of the department of the same name.
var defaultGroupNames = []string{
	"Finance", "Engineering", "Sales", "Executives", "Risky Users - Remediation", "Contractors",
	"HR", "Legal", "IT", "Marketing", "Permitted Senders", "Blocked Senders",
}

func (s *Server) generateUsers() {
	n := s.opts.Users
	s.users = make([]*userRec, 0, n)
	s.byEmail = make(map[string]int, n)
	seen := make(map[string]int, n)
	gradeWeights := []int{25, 30, 22, 13, 10}
	for i := 0; i < n; i++ {
		r := newRNG(uint64(s.opts.Seed), 0x05e4, uint64(i))
		first, last := pick(&r, firstNames), pick(&r, lastNames)
		local := strings.ToLower(first + "." + last)
		seen[local]++
		if c := seen[local]; c > 1 {
			local += strconv.Itoa(c)
		}
		// The suffixed spelling may itself collide with a plain name later;
		// keep addresses unique case-insensitively whatever happens.
		for {
			if _, dup := s.byEmail[local+"@"+s.opts.Domain]; !dup {
				break
			}
			seen[local]++
			local += "x"
		}
		email := local + "@" + s.opts.Domain
		lower := email
		if i%97 == 13 { // a few directory entries keep mixed case
			email = capitalizeLocal(local) + "@" + s.opts.Domain
		}
		gi := pickWeighted(&r, gradeWeights)
		if i < len(grades) {
			gi = i
		}
		comp := func() string {
			c := gi + r.intn(3) - 1
			c = max(0, min(c, len(grades)-1))
			return grades[c]
		}
		u := User{
			Email:      email,
			Name:       first + " " + last,
			Risk:       grades[gi],
			HumanError: comp(),
			Sentiment:  comp(),
			Engagement: comp(),
			Knowledge:  comp(),
			Department: departments[pickWeighted(&r, departmentWeights)],
			UserState:  "active",
		}
		s.byEmail[lower] = len(s.users)
		s.users = append(s.users, &userRec{User: u, js: mustJSON(u)})
	}
}

func capitalizeLocal(local string) string {
	parts := strings.Split(local, ".")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, ".")
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("mimecasttest: encode %T: %v", v, err))
	}
	return b
}

func (s *Server) generateGroups() {
	s.groupByID = map[string]*group{}
	s.rootID = opaqueID(strconv.FormatInt(s.opts.Seed, 10), "root")
	for j := 0; j < s.opts.Groups; j++ {
		name := fmt.Sprintf("Group %d", j+1)
		if j < len(defaultGroupNames) {
			name = defaultGroupNames[j]
		}
		g := s.newGroup(name, s.rootID)
		for i, u := range s.users {
			r := newRNG(uint64(s.opts.Seed), 0x9409, uint64(j), uint64(i))
			var in bool
			switch name {
			case "Finance", "Engineering", "Sales", "HR", "Legal", "IT", "Marketing":
				in = u.Department == name
			case "Executives":
				in = u.Department == "Executive" || i == 0
			case "Contractors":
				in = r.intn(33) == 0
			case "Risky Users - Remediation", "Permitted Senders", "Blocked Senders":
				in = false
			default:
				in = r.intn(20) == 0
			}
			if in {
				g.add(member{email: strings.ToLower(u.Email), domain: s.opts.Domain, internal: true, name: u.Name})
			}
		}
		switch name {
		case "Contractors":
			g.add(member{email: "partner@vendor.example.net", domain: "vendor.example.net", internal: false})
		case "Permitted Senders":
			g.add(member{domain: "partner.example.net"})
		}
	}
}

func (s *Server) newGroup(description, parentID string) *group {
	s.groupSeq++
	g := &group{
		id:          opaqueID(strconv.FormatInt(s.opts.Seed, 10), "group", strconv.Itoa(s.groupSeq), description),
		description: description,
		source:      "cloud",
		parentID:    parentID,
		index:       map[string]int{},
	}
	s.groups = append(s.groups, g)
	s.groupByID[g.id] = g
	return g
}

func memberID(groupID, key string) string { return opaqueID("member", groupID, key) }

// Users returns a copy of every user, in directory order.
func (s *Server) Users() []User {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	out := make([]User, len(s.users))
	for i, u := range s.users {
		out[i] = u.User
	}
	return out
}

// User returns the user with this address (case-insensitive).
func (s *Server) User(email string) (User, bool) {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	i, ok := s.byEmail[strings.ToLower(email)]
	if !ok {
		return User{}, false
	}
	return s.users[i].User, true
}

// SetGrade sets a user's overall risk grade. Any string is accepted, so
// tests can serve an unknown grade such as "E" or "". It reports whether the
// user exists.
func (s *Server) SetGrade(email, grade string) bool {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	i, ok := s.byEmail[strings.ToLower(email)]
	if !ok {
		return false
	}
	u := s.users[i].User
	u.Risk = grade
	s.users[i] = &userRec{User: u, js: mustJSON(u)}
	return true
}

// AddUser adds a user, or replaces the one with the same address
// (case-insensitive). Empty UserState becomes "active".
func (s *Server) AddUser(u User) {
	if u.UserState == "" {
		u.UserState = "active"
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	rec := &userRec{User: u, js: mustJSON(u)}
	if i, ok := s.byEmail[strings.ToLower(u.Email)]; ok {
		s.users[i] = rec
		return
	}
	s.byEmail[strings.ToLower(u.Email)] = len(s.users)
	s.users = append(s.users, rec)
}

// RemoveUser deletes a user from the directory (group memberships stay). It
// reports whether the user existed.
func (s *Server) RemoveUser(email string) bool {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	i, ok := s.byEmail[strings.ToLower(email)]
	if !ok {
		return false
	}
	s.users = append(s.users[:i], s.users[i+1:]...)
	delete(s.byEmail, strings.ToLower(email))
	for j := i; j < len(s.users); j++ {
		s.byEmail[strings.ToLower(s.users[j].Email)] = j
	}
	return true
}

// Groups returns every profile group in creation order.
func (s *Server) Groups() []Group {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	out := make([]Group, len(s.groups))
	for i, g := range s.groups {
		out[i] = g.public()
	}
	return out
}

// FindGroupByName returns the first group whose name (description) equals
// name exactly, as Mimecast clients match.
func (s *Server) FindGroupByName(name string) (Group, bool) {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	for _, g := range s.groups {
		if g.description == name {
			return g.public(), true
		}
	}
	return Group{}, false
}

// CreateGroup creates a group at the root, as create-group does, and
// returns it. Duplicate names are allowed, as in the emulated API.
func (s *Server) CreateGroup(name string) Group {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	return s.newGroup(name, s.rootID).public()
}

// CreateLDAPGroup adds a directory-synced ("ldap") group, as a tenant
// whose groups come from Active Directory has, for tests that must tell
// them from cloud groups.
func (s *Server) CreateLDAPGroup(name string) Group {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	g := s.newGroup(name, s.rootID)
	g.source = "ldap"
	return g.public()
}

// GroupMembers returns the lower-case addresses of a group's members, in
// membership order (domain entries as "@domain"); nil if the group is unknown.
func (s *Server) GroupMembers(groupID string) []string {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	g, ok := s.groupByID[groupID]
	if !ok {
		return nil
	}
	out := make([]string, len(g.members))
	for i, m := range g.members {
		out[i] = m.key()
	}
	return out
}

// AddGroupMember adds an address to a group directly (test setup; no
// "managed address" check). It reports whether the address was added.
func (s *Server) AddGroupMember(groupID, email string) bool {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	g, ok := s.groupByID[groupID]
	if !ok {
		return false
	}
	email = strings.ToLower(email)
	_, internal := s.byEmail[email]
	return g.add(member{email: email, domain: domainOf(email), internal: internal})
}

// RemoveGroupMember removes an address from a group directly (test setup).
func (s *Server) RemoveGroupMember(groupID, email string) bool {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	g, ok := s.groupByID[groupID]
	if !ok {
		return false
	}
	return g.remove(strings.ToLower(email))
}

func domainOf(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return email[i+1:]
	}
	return ""
}
