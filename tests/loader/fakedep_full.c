/* The dependency the "unresolved" fake plugin is linked against. */
int spcfakedep_present(void);
int spcfakedep_missing(void);
int spcfakedep_present(void) { return 1; }
int spcfakedep_missing(void) { return 2; }
