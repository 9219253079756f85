package callout

// WorklistCountCap bounds the counts of the web worklist's tabs: a tab
// with more matching reports than this shows "10,000+" rather than a count
// that would read the lab's whole history on every refresh.
const WorklistCountCap = 10000
