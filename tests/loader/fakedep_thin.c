/* Same soname as fakedep_full.c but without spcfakedep_missing: what the "unresolved"
 * fake plugin finds at run time, like a dependency upgraded incompatibly. */
int spcfakedep_present(void);
int spcfakedep_present(void) { return 1; }
