/* Item groups and the heap generator (SPEC §2): which descriptors and values each heap
 * carries, as spead2.send.ItemGroup / HeapGenerator decide it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "item_internal.h"

/* ------------------------------------------------- uint64 -> uintptr map */

/* Open addressing, linear probing; slots with key EMPTY or TOMB are free. Item IDs are
 * never 0 or UINT64_MAX (checked at item creation), so those serve as markers. */
#define EMPTY 0
#define TOMB UINT64_MAX

struct map {
    uint64_t *keys;
    uintptr_t *vals;
    size_t cap, used; /* used counts live keys and tombstones */
};

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= UINT64_C(0xff51afd7ed558ccd);
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static bool map_get(const struct map *m, uint64_t key, uintptr_t *val)
{
    if (m->cap == 0)
        return false;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == EMPTY)
            return false;
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return true;
        }
    }
}

/* Makes room so that one more put cannot fail. */
static int map_reserve(struct map *m)
{
    if ((m->used + 1) * 2 <= m->cap)
        return 0;
    size_t live = 0;
    for (size_t i = 0; i < m->cap; i++)
        live += m->keys[i] != EMPTY && m->keys[i] != TOMB;
    size_t cap = 16;
    while (cap < (live + 1) * 4)
        cap *= 2;
    uint64_t *keys = calloc(cap, sizeof(*keys));
    uintptr_t *vals = calloc(cap, sizeof(*vals));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == EMPTY || m->keys[i] == TOMB)
            continue;
        size_t j = slot_of(m->keys[i], cap);
        while (keys[j] != EMPTY)
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    m->used = live;
    return 0;
}

/* Inserts or overwrites; map_reserve must have been called. */
static void map_put(struct map *m, uint64_t key, uintptr_t val)
{
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] != EMPTY && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == EMPTY)
        m->used++;
    m->keys[i] = key;
    m->vals[i] = val;
}

static void map_del(struct map *m, uint64_t key)
{
    if (m->cap == 0)
        return;
    for (size_t i = slot_of(key, m->cap); m->keys[i] != EMPTY; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            m->keys[i] = TOMB;
            return;
        }
    }
}

static void map_free(struct map *m)
{
    free(m->keys);
    free(m->vals);
}

/* ------------------------------------------------------------ item groups */

struct spc_item_group {
    struct spc_item **items; /* the group's order */
    size_t n_items, cap_items;
    struct spc_item **retired; /* replaced items, kept valid until the group is destroyed */
    size_t n_retired, cap_retired;
    struct map by_id;
    char last_error[SPCI_ITEM_ERROR_MAX]; /* detail of the latest failed add */
};

int spc_item_group_create(struct spc_item_group **out)
{
    struct spc_item_group *g = calloc(1, sizeof(*g));
    if (!g)
        return spci_item_fail(-ENOMEM, "out of memory");
    *out = g;
    return 0;
}

void spc_item_group_destroy(struct spc_item_group *group)
{
    if (!group)
        return;
    for (size_t i = 0; i < group->n_items; i++)
        spc_item_destroy(group->items[i]);
    for (size_t i = 0; i < group->n_retired; i++)
        spc_item_destroy(group->retired[i]);
    free(group->items);
    free(group->retired);
    map_free(&group->by_id);
    free(group);
}

struct spc_item *spc_item_group_find_id(const struct spc_item_group *group, uint64_t id)
{
    uintptr_t v;
    return map_get(&group->by_id, id, &v) ? (struct spc_item *)v : NULL;
}

struct spc_item *spc_item_group_find_name(const struct spc_item_group *group, const char *name)
{
    for (size_t i = 0; name && i < group->n_items; i++)
        if (strcmp(group->items[i]->name, name) == 0)
            return group->items[i];
    return NULL;
}

size_t spc_item_group_size(const struct spc_item_group *group)
{
    return group->n_items;
}

struct spc_item *spc_item_group_at(const struct spc_item_group *group, size_t index)
{
    return index < group->n_items ? group->items[index] : NULL;
}

static void retire(struct spc_item_group *g, struct spc_item *it)
{
    for (size_t i = 0; i < g->n_items; i++) {
        if (g->items[i] == it) {
            memmove(&g->items[i], &g->items[i + 1], (g->n_items - i - 1) * sizeof(*g->items));
            g->n_items--;
            break;
        }
    }
    map_del(&g->by_id, it->id);
    g->retired[g->n_retired++] = it;
}

static int item_group_add(struct spc_item_group *group, const struct spc_descriptor *d, struct spc_item **out)
{
    if (!group || !d)
        return spci_item_fail(-EINVAL, "item group or descriptor is NULL");
    uint64_t id = d->id;
    if (id == SPC_ITEM_AUTO_ID)
        for (id = SPC_ITEM_FIRST_AUTO_ID; spc_item_group_find_id(group, id); id++)
            ;
    struct spc_item *it;
    int rc = spci_item_new(d, id, &it);
    if (rc < 0)
        return rc;
    struct spc_item *old = spc_item_group_find_id(group, id);
    struct spc_item *old_name = spc_item_group_find_name(group, it->name);
    if (old && spci_item_same_descriptor(old, it)) {
        spc_item_destroy(it);
        if (out)
            *out = old;
        return 0;
    }
    /* Make every later step infallible. */
    if (spci_grow((void **)&group->items, &group->cap_items, group->n_items + 1, sizeof(*group->items)) < 0 ||
        spci_grow((void **)&group->retired, &group->cap_retired, group->n_retired + 2, sizeof(*group->retired)) < 0 ||
        map_reserve(&group->by_id) < 0) {
        spc_item_destroy(it);
        return spci_item_fail(-ENOMEM, "out of memory");
    }
    if (old)
        retire(group, old);
    if (old_name && old_name != old)
        retire(group, old_name);
    group->items[group->n_items++] = it;
    map_put(&group->by_id, it->id, (uintptr_t)it);
    if (out)
        *out = it;
    return 0;
}

int spc_item_group_add(struct spc_item_group *group, const struct spc_descriptor *d, struct spc_item **out)
{
    int rc = item_group_add(group, d, out);
    return group ? spci_item_keep_error(rc, group->last_error, sizeof group->last_error) : rc;
}

/* --------------------------------------------------------- heap generator */

/* What this generator last sent for an item ID. Serials tell a replacement item from
 * the one it replaced even when its version number happens to be the same. */
struct sent {
    uint64_t id;
    bool descriptor_sent;
    uint64_t descriptor_serial;
    uint64_t descriptor_cnt; /* the generator's call count when it was sent */
    bool data_sent;
    uint64_t data_serial;
    uint64_t data_version;
};

struct plan {
    size_t sent; /* index into gen->sent */
    bool descriptor, data;
};

struct spc_heap_generator {
    struct spc_item_group *group;
    struct spc_flavour flavour;
    unsigned descriptor_frequency;
    uint64_t cnt; /* add_to_heap calls so far */
    struct sent *sent;
    size_t n_sent, cap_sent;
    struct map by_id; /* id -> index into sent */
    struct plan *plan;
    size_t cap_plan;
    char last_error[SPCI_ITEM_ERROR_MAX]; /* detail of the latest failed call */
};

int spc_heap_generator_create(struct spc_heap_generator **out, struct spc_item_group *group,
                              const struct spc_flavour *flavour, unsigned descriptor_frequency)
{
    if (!group)
        return spci_item_fail(-EINVAL, "item group is NULL");
    struct spc_flavour f = flavour ? *flavour : SPC_FLAVOUR_DEFAULT;
    int rc = spc_flavour_check(&f);
    if (rc < 0)
        return spci_item_fail(rc, "%s", spc_strerror(rc));
    struct spc_heap_generator *g = calloc(1, sizeof(*g));
    if (!g)
        return spci_item_fail(-ENOMEM, "out of memory");
    g->group = group;
    g->flavour = f;
    g->descriptor_frequency = descriptor_frequency;
    *out = g;
    return 0;
}

void spc_heap_generator_destroy(struct spc_heap_generator *gen)
{
    if (!gen)
        return;
    free(gen->sent);
    free(gen->plan);
    map_free(&gen->by_id);
    free(gen);
}

static int sent_index(struct spc_heap_generator *g, uint64_t id, size_t *index)
{
    uintptr_t v;
    if (map_get(&g->by_id, id, &v)) {
        *index = (size_t)v;
        return 0;
    }
    if (spci_grow((void **)&g->sent, &g->cap_sent, g->n_sent + 1, sizeof(*g->sent)) < 0 || map_reserve(&g->by_id) < 0)
        return -ENOMEM;
    g->sent[g->n_sent] = (struct sent){.id = id};
    map_put(&g->by_id, id, (uintptr_t)g->n_sent);
    *index = g->n_sent++;
    return 0;
}

static bool valid_select(enum spc_select s)
{
    return s == SPC_SELECT_STALE || s == SPC_SELECT_ALL || s == SPC_SELECT_NONE;
}

static int generator_add_to_heap(struct spc_heap_generator *gen, struct spc_heap *heap,
                                   enum spc_select descriptors, enum spc_select data)
{
    if (!gen || !heap)
        return spci_item_fail(-EINVAL, "generator or heap is NULL");
    if (!valid_select(descriptors) || !valid_select(data))
        return spci_item_fail(-EINVAL, "descriptors and data must be one of stale, all, none");
    const struct spc_item_group *group = gen->group;
    size_t n = group->n_items;
    if (spci_grow((void **)&gen->plan, &gen->cap_plan, n, sizeof(*gen->plan)) < 0)
        return spci_item_fail(-ENOMEM, "out of memory");
    /* Decide everything first, so that a failure leaves the generator as it was. */
    for (size_t i = 0; i < n; i++) {
        const struct spc_item *it = group->items[i];
        struct plan *p = &gen->plan[i];
        if (sent_index(gen, it->id, &p->sent) < 0)
            return spci_item_fail(-ENOMEM, "out of memory");
        const struct sent *s = &gen->sent[p->sent];
        bool desc_stale = !s->descriptor_sent || s->descriptor_serial != it->serial ||
                          (gen->descriptor_frequency > 0 && gen->cnt - s->descriptor_cnt >= gen->descriptor_frequency);
        bool data_stale = !s->data_sent || s->data_serial != it->serial || s->data_version != it->version;
        p->descriptor = descriptors == SPC_SELECT_ALL || (descriptors == SPC_SELECT_STALE && desc_stale);
        p->data = it->version > 0 && (data == SPC_SELECT_ALL || (data == SPC_SELECT_STALE && data_stale));
    }
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (gen->plan[i].descriptor && (rc = spc_heap_add_item_descriptor(heap, group->items[i])) < 0)
            return rc;
        if (gen->plan[i].data && (rc = spc_heap_add_item_value(heap, group->items[i])) < 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const struct spc_item *it = group->items[i];
        struct sent *s = &gen->sent[gen->plan[i].sent];
        if (gen->plan[i].descriptor) {
            s->descriptor_sent = true;
            s->descriptor_serial = it->serial;
            s->descriptor_cnt = gen->cnt;
        }
        if (gen->plan[i].data) {
            s->data_sent = true;
            s->data_serial = it->serial;
            s->data_version = it->version;
        }
    }
    gen->cnt++;
    return 0;
}

int spc_heap_generator_add_to_heap(struct spc_heap_generator *gen, struct spc_heap *heap,
                                   enum spc_select descriptors, enum spc_select data)
{
    int rc = generator_add_to_heap(gen, heap, descriptors, data);
    return gen ? spci_item_keep_error(rc, gen->last_error, sizeof gen->last_error) : rc;
}

static int generator_get_heap(struct spc_heap_generator *gen, struct spc_heap **out, enum spc_select descriptors,
                                enum spc_select data)
{
    if (!gen)
        return spci_item_fail(-EINVAL, "generator is NULL");
    struct spc_heap *heap;
    int rc = spc_heap_create(&heap, &gen->flavour);
    if (rc < 0)
        return spci_item_fail(rc, "%s", spc_strerror(rc));
    if ((rc = generator_add_to_heap(gen, heap, descriptors, data)) < 0) {
        spc_heap_destroy(heap);
        return rc;
    }
    *out = heap;
    return 0;
}

int spc_heap_generator_get_heap(struct spc_heap_generator *gen, struct spc_heap **out, enum spc_select descriptors,
                                enum spc_select data)
{
    int rc = generator_get_heap(gen, out, descriptors, data);
    return gen ? spci_item_keep_error(rc, gen->last_error, sizeof gen->last_error) : rc;
}

static int control_heap(struct spc_heap_generator *gen, struct spc_heap **out, bool start)
{
    if (!gen)
        return spci_item_fail(-EINVAL, "generator is NULL");
    struct spc_heap *heap = NULL;
    int rc = spc_heap_create(&heap, &gen->flavour);
    if (rc == 0)
        rc = start ? spc_heap_add_start(heap) : spc_heap_add_end(heap);
    if (rc < 0) {
        spc_heap_destroy(heap);
        return spci_item_fail(rc, "%s", spc_strerror(rc));
    }
    *out = heap;
    return 0;
}

int spc_heap_generator_get_start(struct spc_heap_generator *gen, struct spc_heap **out)
{
    int rc = control_heap(gen, out, true);
    return gen ? spci_item_keep_error(rc, gen->last_error, sizeof gen->last_error) : rc;
}

int spc_heap_generator_get_end(struct spc_heap_generator *gen, struct spc_heap **out)
{
    int rc = control_heap(gen, out, false);
    return gen ? spci_item_keep_error(rc, gen->last_error, sizeof gen->last_error) : rc;
}

size_t spc_item_group_last_error(const struct spc_item_group *group, char *err, size_t errlen)
{
    return spci_copy_error(group ? group->last_error : "", err, errlen);
}

size_t spc_heap_generator_last_error(const struct spc_heap_generator *gen, char *err, size_t errlen)
{
    return spci_copy_error(gen ? gen->last_error : "", err, errlen);
}
