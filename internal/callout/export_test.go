package callout

// HoldPasswordChecks takes every password-check slot of s, as that many
// running checks would, until release is called.
func (s *SignIn) HoldPasswordChecks() (release func()) {
	for range cap(s.slots) {
		s.slots <- struct{}{}
	}
	return func() {
		for range cap(s.slots) {
			<-s.slots
		}
	}
}
