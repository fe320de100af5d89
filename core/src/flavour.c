#include "speadcast/wire.h"

#include <errno.h>

int spc_flavour_check(const struct spc_flavour *f)
{
    if (!f)
        return -EINVAL;
    if (f->heap_address_bits < 8 || f->heap_address_bits > 56 || f->heap_address_bits % 8 != 0)
        return -SPC_EFLAVOUR;
    if (f->bug_compat & ~SPC_BUG_COMPAT_PYSPEAD_0_5_2)
        return -SPC_EFLAVOUR;
    return 0;
}

int spc_flavour_init(struct spc_flavour *out, unsigned heap_address_bits, unsigned bug_compat)
{
    struct spc_flavour f = {heap_address_bits, bug_compat};
    int rc = spc_flavour_check(&f);
    if (rc == 0 && out)
        *out = f;
    return rc;
}

uint64_t spc_flavour_max_id(const struct spc_flavour *f)
{
    return (UINT64_C(1) << (63 - f->heap_address_bits)) - 1;
}

uint64_t spc_flavour_max_value(const struct spc_flavour *f)
{
    return (UINT64_C(1) << f->heap_address_bits) - 1;
}
