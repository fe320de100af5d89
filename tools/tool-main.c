/* The main of speadcast-send, speadcast-recv and speadcast-bench: each executable is
 * this file compiled with SPCT_ENTRY naming its entry point in speadcast_tools. */
#include <stdio.h>

#include "common.h"

#ifndef SPCT_ENTRY
#error "SPCT_ENTRY must name the tool's entry point"
#endif

int main(int argc, char **argv)
{
    spct_install_signals();
    int rc = SPCT_ENTRY(argc, argv, stdout, stderr);
    fflush(stdout);
    return rc;
}
