/* The spead2 vectors rebuilt through items, item groups and the heap generator, with values
 * given as numbers (the JSON "value" fields, never raw_hex): every dtype_*, format_*,
 * flavour_*, pyspead_* and itemgroup_* case of tests/vectors/spead2/ (plus the
 * descriptors_* cases) and the numpy-simple, fallback-types, variable-shape-descriptor,
 * small-fixed and small-variable heaps of spead2-encoder.txt, byte for byte. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "testutil.h"
#include "vectorcase.h"

#define CORPUS_DIR SPC_TEST_VECTOR_DIR "/spead2"
#define ENCODER_TXT SPC_TEST_VECTOR_DIR "/spead2-encoder.txt"

/* ------------------------------------------------ JSON values to spc_array */

#define SLOT 16 /* bytes per field slot in a record buffer: room for a double[2] */

struct value {
    uint8_t *buf;
    size_t n, cap; /* elements collected */
    size_t shape[SPC_ITEM_MAX_DIMS];
    size_t n_dims;
    size_t nf;
    struct spc_field_src fields[16];
};

/* Collects the leaves at depth n_dims in C order, recording the shape. */
static void collect(json_t *j, size_t depth, struct value *v, json_t ***leaves, size_t *n_leaves, size_t *cap)
{
    if (depth == v->n_dims) {
        if (*n_leaves == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *leaves = realloc(*leaves, *cap * sizeof(**leaves));
            cr_assert_not_null(*leaves);
        }
        (*leaves)[(*n_leaves)++] = j;
        return;
    }
    cr_assert(json_is_array(j), "value nesting shallower than the shape");
    size_t n = json_array_size(j);
    if (v->shape[depth] == SIZE_MAX)
        v->shape[depth] = n;
    cr_assert_eq(v->shape[depth], n, "ragged value");
    for (size_t i = 0; i < n; i++)
        collect(json_array_get(j, i), depth + 1, v, leaves, n_leaves, cap);
}

static enum spc_ctype leaf_type(json_t *j)
{
    if (json_is_real(j))
        return SPC_CTYPE_F64;
    if (json_is_integer(j))
        return SPC_CTYPE_I64;
    if (json_is_boolean(j))
        return SPC_CTYPE_BOOL;
    if (json_is_string(j)) {
        cr_assert_eq(strlen(json_string_value(j)), 1, "string field of more than one char");
        return SPC_CTYPE_CHAR;
    }
    cr_assert(json_is_array(j) && json_array_size(j) == 2, "unexpected leaf value");
    return SPC_CTYPE_C128;
}

static void store(uint8_t *p, enum spc_ctype t, json_t *j)
{
    switch (t) {
    case SPC_CTYPE_F64: {
        double d = json_number_value(j);
        memcpy(p, &d, 8);
        break;
    }
    case SPC_CTYPE_I64: {
        int64_t i = json_integer_value(j);
        memcpy(p, &i, 8);
        break;
    }
    case SPC_CTYPE_BOOL:
        *(bool *)p = json_is_true(j);
        break;
    case SPC_CTYPE_CHAR:
        *(char *)p = json_string_value(j)[0];
        break;
    default: {
        double c[2] = {json_number_value(json_array_get(j, 0)), json_number_value(json_array_get(j, 1))};
        memcpy(p, c, 16);
        break;
    }
    }
}

/* Sets an item's value from a JSON "value". complex says that a two-element leaf is one
 * complex number rather than a record of two fields. */
static void set_from_json(struct spc_item *item, const struct spc_descriptor *d, json_t *jv)
{
    int rc;
    if (json_is_string(jv) && d->n_dims > 0) {
        rc = spc_item_set_string(item, json_string_value(jv), 0);
        cr_assert_eq(rc, 0, "%s: %s", spc_item_name(item), tu_item_err(item));
        return;
    }
    bool complex = d->dtype && d->dtype[0] != '[' && strchr(d->dtype, 'c');
    struct value v = {.n_dims = d->n_dims};
    for (size_t i = 0; i < v.n_dims; i++)
        v.shape[i] = SIZE_MAX;
    json_t **leaves = NULL;
    size_t n = 0, cap = 0;
    collect(jv, 0, &v, &leaves, &n, &cap);
    /* A leaf is a record (array of fields) unless it is a complex number or a scalar. */
    bool record = n > 0 && json_is_array(leaves[0]) && !complex;
    v.nf = record ? json_array_size(leaves[0]) : 1;
    cr_assert_leq(v.nf, 16);
    /* Per field: a real anywhere makes the field F64 (JSON writes 1.0 as 1.0, but be safe). */
    enum spc_ctype types[16];
    for (size_t f = 0; f < v.nf; f++) {
        types[f] = 0;
        for (size_t e = 0; e < n; e++) {
            json_t *x = record ? json_array_get(leaves[e], f) : leaves[e];
            enum spc_ctype t = leaf_type(x);
            if (types[f] == 0 || (t == SPC_CTYPE_F64 && types[f] == SPC_CTYPE_I64))
                types[f] = t;
        }
    }
    struct spc_array a = {.n_dims = v.n_dims, .shape = v.shape};
    if (record) {
        v.buf = calloc(n ? n : 1, SLOT * v.nf);
        for (size_t f = 0; f < v.nf; f++)
            v.fields[f] = (struct spc_field_src){types[f], SLOT * f};
        for (size_t e = 0; e < n; e++)
            for (size_t f = 0; f < v.nf; f++)
                store(v.buf + e * SLOT * v.nf + SLOT * f, types[f], json_array_get(leaves[e], f));
        a.fields = v.fields;
        a.n_fields = v.nf;
        a.elem_size = SLOT * v.nf;
    } else {
        enum spc_ctype t = n ? types[0] : SPC_CTYPE_I64;
        size_t sz = spc_ctype_size(t);
        v.buf = calloc(n ? n : 1, sz);
        for (size_t e = 0; e < n; e++)
            store(v.buf + e * sz, t, leaves[e]);
        a.type = t;
    }
    a.data = v.buf;
    /* Copy: the buffer is freed here (a referenced value would dangle). */
    rc = spc_item_set(item, &a, SPC_SET_COPY);
    cr_assert_eq(rc, 0, "%s: %s", spc_item_name(item), tu_item_err(item));
    free(leaves);
    free(v.buf);
}

/* ------------------------------------------------------------ case driving */

struct run {
    struct vc_case *c;
    json_t *root;
    struct spc_item_group *group;
    struct spc_heap_generator *gen;
    struct vc_packet *out; /* packets produced so far */
    size_t n_out, cap_out;
};

static void run_open(struct run *r, const char *name, unsigned descriptor_frequency)
{
    char err[256] = "";
    memset(r, 0, sizeof(*r));
    cr_assert_eq(vc_load(CORPUS_DIR, name, &r->c, err, sizeof(err)), 0, "%s: %s", name, err);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.json", CORPUS_DIR, name);
    json_error_t jerr;
    r->root = json_load_file(path, 0, &jerr);
    cr_assert_not_null(r->root, "%s: %s", path, jerr.text);
    cr_assert_eq(spc_item_group_create(&r->group), 0);
    cr_assert_eq(spc_heap_generator_create(&r->gen, r->group, &r->c->flavour, descriptor_frequency), 0);
}

static void run_close(struct run *r)
{
    for (size_t i = 0; i < r->n_out; i++)
        free(r->out[i].data);
    free(r->out);
    spc_heap_generator_destroy(r->gen);
    spc_item_group_destroy(r->group);
    json_decref(r->root);
    vc_free(r->c);
}

static json_t *entry_json(struct run *r, size_t heap, size_t entry)
{
    json_t *h = json_array_get(json_object_get(r->root, "heaps"), heap);
    return json_array_get(json_object_get(h, "entries"), entry);
}

/* Index of heap h's entry of this kind for ID id; fails the test if absent. */
static size_t find_entry(struct run *r, size_t h, enum vc_kind kind, uint64_t id)
{
    const struct vc_heap *hp = &r->c->heaps[h];
    for (size_t k = 0; k < hp->n_entries; k++)
        if (hp->entries[k].kind == kind && hp->entries[k].id == id)
            return k;
    cr_assert_fail("%s heap %zu has no entry of kind %d for ID 0x%llx", r->c->name, h, (int)kind, (unsigned long long)id);
    return 0;
}

/* Adds (or replaces) the item that heap h's descriptor entry k describes. */
static struct spc_item *add_from_entry(struct run *r, size_t h, size_t k)
{
    const struct vc_entry *e = &r->c->heaps[h].entries[k];
    cr_assert_eq(e->kind, VC_DESCRIPTOR);
    struct spc_descriptor d;
    vc_descriptor(e, &d);
    struct spc_item *it;
    int rc = spc_item_group_add(r->group, &d, &it);
    cr_assert_eq(rc, 0, "%s: %s", e->name, tu_group_err(r->group));
    cr_assert_eq(spc_item_id(it), e->id);
    if (e->wire_numpy_header) {
        /* The header text spead2 put on the wire (byte order swapped under bug_compat 4). */
        struct spc_descriptor v;
        spc_item_descriptor(it, &v);
        char hdr[512];
        spc_dtype_header(&v, r->c->flavour.bug_compat & SPC_BUG_COMPAT_SWAP_ENDIAN, hdr, sizeof(hdr));
        cr_assert_str_eq(hdr, e->wire_numpy_header);
    }
    return it;
}

/* Sets the value of the item that heap h's item entry k carries, from its JSON value, and
 * checks the result against the bytes spead2 sent and its allow_immediate flag. */
static void set_from_entry(struct run *r, size_t h, size_t k)
{
    const struct vc_entry *e = &r->c->heaps[h].entries[k];
    cr_assert_eq(e->kind, VC_ITEM);
    struct spc_item *it = spc_item_group_find_id(r->group, e->id);
    cr_assert_not_null(it, "no item 0x%llx", (unsigned long long)e->id);
    cr_assert_str_eq(spc_item_name(it), e->name);
    struct spc_descriptor d;
    spc_item_descriptor(it, &d);
    uint64_t before = spc_item_version(it);
    set_from_json(it, &d, json_object_get(entry_json(r, h, k), "value"));
    cr_assert_eq(spc_item_version(it), before + 1);
    const void *data;
    size_t len;
    cr_assert_eq(spc_item_value(it, &data, &len), 0);
    cr_assert(vc_same_bytes(e->name, data, len, e->raw, e->raw_len), "%s: value bytes differ", e->name);
    cr_assert_eq(spc_item_allow_immediate(it), e->allow_immediate, "%s: allow_immediate", e->name);
}

/* Packetizes heap (as heap h of the case) and appends its packets to the output. */
static void emit(struct run *r, struct spc_heap *heap, size_t h)
{
    spc_heap_set_repeat_pointers(heap, r->c->heaps[h].repeat_pointers);
    struct vc_packets pk;
    int rc = vc_packetize(heap, r->c->heaps[h].cnt, r->c->max_packet_size, &pk);
    cr_assert_eq(rc, 0, "heap %zu: %s", h, spc_strerror(rc));
    for (size_t i = 0; i < pk.n; i++) {
        if (r->n_out == r->cap_out) {
            r->cap_out = r->cap_out ? 2 * r->cap_out : 16;
            r->out = realloc(r->out, r->cap_out * sizeof(*r->out));
            cr_assert_not_null(r->out);
        }
        r->out[r->n_out++] = pk.p[i];
    }
    free(pk.p);
    spc_heap_destroy(heap);
}

/* The produced stream must equal spead2's packet for packet. */
static void compare(struct run *r)
{
    cr_assert_eq(r->n_out, r->c->n_packets, "%s: %zu packets produced, %zu expected", r->c->name, r->n_out,
                 r->c->n_packets);
    for (size_t i = 0; i < r->n_out; i++) {
        char label[128];
        snprintf(label, sizeof(label), "%s packet %zu", r->c->name, i);
        cr_assert(vc_same_bytes(label, r->out[i].data, r->out[i].len, r->c->packets[i].data, r->c->packets[i].len),
                  "%s differs", label);
    }
}

static struct spc_heap *get_heap(struct run *r, enum spc_select descriptors, enum spc_select data)
{
    struct spc_heap *heap;
    int rc = spc_heap_generator_get_heap(r->gen, &heap, descriptors, data);
    cr_assert_eq(rc, 0, "get_heap: %s", tu_gen_err(r->gen));
    return heap;
}

/* One-heap cases whose heap holds descriptors and then values in the same ID order: the
 * group holds the described items, values are set from the JSON, and the heap is made
 * with get_heap(descriptors all, data none) followed by add_to_heap(none, stale). */
static void run_generic(const char *name)
{
    struct run r;
    run_open(&r, name, 0);
    cr_assert_eq(r.c->n_heaps, 1, "%s: generic driver takes one-heap cases", name);
    const struct vc_heap *h = &r.c->heaps[0];
    size_t k = 0;
    for (; k < h->n_entries && h->entries[k].kind == VC_DESCRIPTOR; k++)
        add_from_entry(&r, 0, k);
    size_t next_desc = 0;
    for (; k < h->n_entries; k++) {
        const struct vc_entry *e = &h->entries[k];
        cr_assert_eq(e->kind, VC_ITEM, "%s: entry %zu is not an item after the descriptors", name, k);
        /* Values must follow the group's order for the generator to reproduce them. */
        while (next_desc < spc_item_group_size(r.group) && spc_item_id(spc_item_group_at(r.group, next_desc)) != e->id)
            next_desc++;
        cr_assert_lt(next_desc, spc_item_group_size(r.group), "%s: item 0x%llx out of descriptor order", name,
                     (unsigned long long)e->id);
        set_from_entry(&r, 0, k);
    }
    struct spc_heap *heap = get_heap(&r, SPC_SELECT_ALL, SPC_SELECT_NONE);
    int rc = spc_heap_generator_add_to_heap(r.gen, heap, SPC_SELECT_NONE, SPC_SELECT_STALE);
    cr_assert_eq(rc, 0, "%s", tu_gen_err(r.gen));
    cr_assert_eq(spc_heap_n_items(heap), h->n_entries);
    emit(&r, heap, 0);
    compare(&r);
    run_close(&r);
}

static const char *const generic_cases[] = {
    "flavour_64_40", "flavour_64_48", "flavour_64_56", "flavour_64_32",
    "pyspead_bugcompat7",
    "dtype_u1_bool", "dtype_be_u2_1d", "dtype_le_i4_2d", "dtype_be_i8_3d", "dtype_le_f4_1d",
    "dtype_scalars_f8_c16", "dtype_le_c8_1d", "dtype_structured", "dtype_fortran_2d", "dtype_fortran_3d",
    "format_u40_u48_6440", "format_u40_u48_6448", "format_packed_i12_u4", "format_signed_immediates",
    "format_b1", "format_c8_string", "format_f32_f64", "format_u7",
    "descriptors_only", "descriptors_and_data",
};
#define N_GENERIC (sizeof(generic_cases) / sizeof(generic_cases[0]))

/* Parameters are indices: Criterion's workers may not share the parent's addresses. */
ParameterizedTestParameters(itemgroup_vectors, generic)
{
    static size_t indices[N_GENERIC];
    for (size_t i = 0; i < N_GENERIC; i++)
        indices[i] = i;
    return cr_make_param_array(size_t, indices, N_GENERIC);
}

ParameterizedTest(size_t *index, itemgroup_vectors, generic)
{
    run_generic(generic_cases[*index]);
}

/* Every case of the required families is covered by a driver here. */
Test(itemgroup_vectors, manifest_covered)
{
    char **names;
    size_t n = vc_list(CORPUS_DIR, &names);
    cr_assert_gt(n, 0);
    static const char *const prefixes[] = {"dtype_", "format_", "flavour_", "pyspead_", "itemgroup_"};
    static const char *const scripted[] = {"itemgroup_stale", "itemgroup_descriptor_frequency2"};
    size_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        bool wanted = false, found = false;
        for (size_t p = 0; p < 5; p++)
            wanted |= strncmp(names[i], prefixes[p], strlen(prefixes[p])) == 0;
        for (size_t g = 0; g < N_GENERIC; g++)
            found |= strcmp(names[i], generic_cases[g]) == 0;
        for (size_t g = 0; g < 2; g++)
            found |= strcmp(names[i], scripted[g]) == 0;
        cr_expect(!wanted || found, "case %s is not rebuilt through items", names[i]);
        covered += wanted && found;
    }
    cr_assert_eq(covered, 25, "%zu required cases covered", covered);
    vc_free_names(names, n);
}

/* ops: ig=ItemGroup(flavour 64-40); add timestamp(u40), counter(<u4), samples(>i2[8]),
 * label(c8[None]); cnt1 get_start(); cnt2 add_to_heap; counter=1 -> cnt3; cnt4 no change;
 * samples,label changed -> cnt5; add_item(samples, shape (4,)) -> cnt6;
 * add_to_heap(descriptors='all', data='all') -> cnt7; cnt8 get_end() */
Test(itemgroup_vectors, itemgroup_stale)
{
    struct run r;
    run_open(&r, "itemgroup_stale", 0);
    cr_assert_eq(r.c->n_heaps, 8);
    /* Heap index 1 (cnt 2) holds all four descriptors and first values, alternating. */
    for (size_t k = 0; k < 8; k += 2) {
        add_from_entry(&r, 1, k);
        set_from_entry(&r, 1, k + 1);
    }
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_generator_get_start(r.gen, &heap), 0);
    emit(&r, heap, 0);

    cr_assert_eq(spc_heap_create(&heap, &r.c->flavour), 0);
    cr_assert_eq(spc_heap_generator_add_to_heap(r.gen, heap, SPC_SELECT_STALE, SPC_SELECT_STALE), 0);
    emit(&r, heap, 1);

    set_from_entry(&r, 2, find_entry(&r, 2, VC_ITEM, 0x1001)); /* counter = 1 */
    emit(&r, get_heap(&r, SPC_SELECT_STALE, SPC_SELECT_STALE), 2);

    emit(&r, get_heap(&r, SPC_SELECT_STALE, SPC_SELECT_STALE), 3); /* nothing changed */

    set_from_entry(&r, 4, find_entry(&r, 4, VC_ITEM, 0x1002)); /* samples */
    set_from_entry(&r, 4, find_entry(&r, 4, VC_ITEM, 0x1003)); /* label */
    emit(&r, get_heap(&r, SPC_SELECT_STALE, SPC_SELECT_STALE), 4);

    struct spc_item *old = spc_item_group_find_id(r.group, 0x1002);
    add_from_entry(&r, 5, find_entry(&r, 5, VC_DESCRIPTOR, 0x1002)); /* samples, shape (4,) */
    cr_assert_neq(spc_item_group_find_id(r.group, 0x1002), old, "replacement is a new item");
    cr_assert_eq(spc_item_group_at(r.group, 3), spc_item_group_find_id(r.group, 0x1002), "moved to the end");
    set_from_entry(&r, 5, find_entry(&r, 5, VC_ITEM, 0x1002));
    emit(&r, get_heap(&r, SPC_SELECT_STALE, SPC_SELECT_STALE), 5);

    emit(&r, get_heap(&r, SPC_SELECT_ALL, SPC_SELECT_ALL), 6);

    cr_assert_eq(spc_heap_generator_get_end(r.gen, &heap), 0);
    emit(&r, heap, 7);
    compare(&r);
    run_close(&r);
}

/* ops: ig=ItemGroup(descriptor_frequency=2); add a(<u4), b(>f4[2]), c(u40); for k in
 * 1..5: a=k (b changed before k=3); add_to_heap -> cnt k */
Test(itemgroup_vectors, itemgroup_descriptor_frequency2)
{
    struct run r;
    run_open(&r, "itemgroup_descriptor_frequency2", 2);
    cr_assert_eq(r.c->n_heaps, 5);
    for (size_t k = 0; k < 6; k += 2)
        add_from_entry(&r, 0, k);
    set_from_entry(&r, 0, find_entry(&r, 0, VC_ITEM, 0x1001)); /* b */
    set_from_entry(&r, 0, find_entry(&r, 0, VC_ITEM, 0x1002)); /* c */
    for (size_t h = 0; h < 5; h++) {
        set_from_entry(&r, h, find_entry(&r, h, VC_ITEM, 0x1000)); /* a = k */
        if (h == 2)
            set_from_entry(&r, h, find_entry(&r, h, VC_ITEM, 0x1001));
        emit(&r, get_heap(&r, SPC_SELECT_STALE, SPC_SELECT_STALE), h);
    }
    compare(&r);
    run_close(&r);
}

/* ------------------------------------------------- spead2-encoder.txt heaps */

/* The hex of section [name] (lines up to the next blank line, "packetN:" prefixes and
 * parenthesised remarks dropped), as bytes. */
static uint8_t *section_bytes(const char *name, size_t *len)
{
    char *text = tu_read_file(ENCODER_TXT, NULL);
    cr_assert_not_null(text);
    char tag[128];
    snprintf(tag, sizeof(tag), "\n[%s]", name);
    char *at = strstr(text, tag);
    cr_assert_not_null(at, "no section %s", name);
    at = strchr(at + 1, '\n');
    cr_assert_not_null(at);
    at++;
    char *hex = calloc(strlen(at) + 1, 1);
    size_t o = 0;
    while (*at && *at != '\n' && *at != '[') {
        char *end = strchr(at, '\n');
        if (!end)
            end = at + strlen(at);
        char *colon = memchr(at, ':', (size_t)(end - at));
        char *p = colon ? colon + 1 : at;
        if (*at != '(')
            for (; p < end; p++)
                if (*p != ' ')
                    hex[o++] = *p;
        at = *end ? end + 1 : end;
    }
    uint8_t *bytes = tu_hex_decode(hex, len);
    cr_assert_not_null(bytes, "bad hex in [%s]", name);
    free(hex);
    free(text);
    return bytes;
}

static void heap_equals_section(struct spc_heap *heap, uint64_t cnt, const char *name)
{
    size_t want_len;
    uint8_t *want = section_bytes(name, &want_len);
    struct vc_packets pk;
    cr_assert_eq(vc_packetize(heap, cnt, 1500, &pk), 0);
    cr_assert_eq(pk.n, 1);
    cr_assert(vc_same_bytes(name, pk.p[0].data, pk.p[0].len, want, want_len), "[%s] differs", name);
    vc_packets_free(&pk);
    free(want);
}

static void numpy_simple(unsigned hab, const char *name)
{
    struct spc_flavour f;
    cr_assert_eq(spc_flavour_init(&f, hab, 0), 0);
    struct spc_item_group *g;
    struct spc_heap_generator *gen;
    cr_assert_eq(spc_item_group_create(&g), 0);
    cr_assert_eq(spc_heap_generator_create(&gen, g, &f, 0), 0);
    const int64_t shape[] = {2, 3};
    struct spc_descriptor d = {.id = 0x2345, .name = "name", .description = "description", .shape = shape,
                               .n_dims = 2, .dtype = "<u2"};
    struct spc_item *it;
    cr_assert_eq(spc_item_group_add(g, &d, &it), 0);
    const int32_t values[2][3] = {{6, 7, 8}, {10, 11, 12000}};
    const size_t vshape[] = {2, 3};
    struct spc_array a = {.data = values, .type = SPC_CTYPE_I32, .n_dims = 2, .shape = vshape};
    cr_assert_eq(spc_item_set(it, &a, 0), 0, "%s", tu_item_err(it));
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_generator_get_heap(gen, &heap, SPC_SELECT_STALE, SPC_SELECT_STALE), 0);
    heap_equals_section(heap, 0x123456, name);
    spc_heap_destroy(heap);
    spc_heap_generator_destroy(gen);
    spc_item_group_destroy(g);
}

Test(itemgroup_vectors, numpy_simple_64_48)
{
    numpy_simple(48, "numpy-simple-64-48");
}

Test(itemgroup_vectors, numpy_simple_64_40)
{
    numpy_simple(40, "numpy-simple-64-40");
}

/* format [(b,1),(i,7),(c,8),(f,32)] (2,) from an array of C structs. */
Test(itemgroup_vectors, fallback_types)
{
    struct spc_flavour f = {48, 0};
    struct spc_item_group *g;
    struct spc_heap_generator *gen;
    cr_assert_eq(spc_item_group_create(&g), 0);
    cr_assert_eq(spc_heap_generator_create(&gen, g, &f, 0), 0);
    const struct spc_format_field fmt[] = {{'b', 1}, {'i', 7}, {'c', 8}, {'f', 32}};
    const int64_t shape[] = {2};
    struct spc_descriptor d = {.id = 0x2345, .name = "name", .description = "description", .shape = shape,
                               .n_dims = 1, .format = fmt, .n_format = 4};
    struct spc_item *it;
    cr_assert_eq(spc_item_group_add(g, &d, &it), 0, "%s", tu_group_err(g));
    struct rec {
        bool b;
        int8_t i;
        char c;
        float f;
    } recs[2] = {{true, 17, 'y', 1.0f}, {false, -23, 'n', -1.0f}};
    const struct spc_field_src fields[] = {{SPC_CTYPE_BOOL, offsetof(struct rec, b)},
                                           {SPC_CTYPE_I8, offsetof(struct rec, i)},
                                           {SPC_CTYPE_CHAR, offsetof(struct rec, c)},
                                           {SPC_CTYPE_F32, offsetof(struct rec, f)}};
    const size_t vshape[] = {2};
    struct spc_array a = {.data = recs, .fields = fields, .n_fields = 4, .elem_size = sizeof(struct rec),
                          .n_dims = 1, .shape = vshape};
    cr_assert_eq(spc_item_set(it, &a, 0), 0, "%s", tu_item_err(it));
    cr_assert(spc_item_allow_immediate(it), "48-bit records are whole bytes");
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_generator_get_heap(gen, &heap, SPC_SELECT_STALE, SPC_SELECT_STALE), 0);
    heap_equals_section(heap, 0x123456, "fallback-types");
    spc_heap_destroy(heap);
    spc_heap_generator_destroy(gen);
    spc_item_group_destroy(g);
}

/* An item without a value: get_heap carries only its descriptor. */
static void variable_shape(unsigned bug_compat, const uint8_t *payload, size_t payload_len, uint64_t heap_size)
{
    struct spc_flavour f = {40, bug_compat};
    struct spc_item_group *g;
    struct spc_heap_generator *gen;
    cr_assert_eq(spc_item_group_create(&g), 0);
    cr_assert_eq(spc_heap_generator_create(&gen, g, &f, 0), 0);
    const struct spc_format_field fmt[] = {{'u', 8}};
    const int64_t shape[] = {SPC_DIM_VARIABLE, 5};
    struct spc_descriptor d = {.id = 0x1234, .name = "n", .description = "d", .shape = shape, .n_dims = 2,
                               .format = fmt, .n_format = 1};
    cr_assert_eq(spc_item_group_add(g, &d, NULL), 0, "%s", tu_group_err(g));
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_generator_get_heap(gen, &heap, SPC_SELECT_STALE, SPC_SELECT_STALE), 0);
    cr_assert_eq(spc_heap_n_items(heap), 1);
    cr_assert_eq(spc_heap_payload_size(heap), heap_size);
    struct vc_packets pk;
    cr_assert_eq(vc_packetize(heap, 1, 1500, &pk), 0);
    cr_assert_eq(pk.n, 1);
    cr_assert_geq(pk.p[0].len, payload_len);
    cr_assert(vc_same_bytes("variable-shape-descriptor", pk.p[0].data + pk.p[0].len - payload_len, payload_len,
                            payload, payload_len));
    vc_packets_free(&pk);
    spc_heap_destroy(heap);
    spc_heap_generator_destroy(gen);
    spc_item_group_destroy(g);
}

Test(itemgroup_vectors, variable_shape_descriptor)
{
    /* 6e 64 | 75 000008 | 01 0000000000 | 00 0000000005 */
    static const uint8_t plain[] = {0x6e, 0x64, 0x75, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
    /* 6e 64 | 75 000008 | 02 00000000000000 | 00 0000000000000005 */
    static const uint8_t compat[] = {0x6e, 0x64, 0x75, 0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
    variable_shape(0, plain, sizeof(plain), 0x62);
    variable_shape(SPC_BUG_COMPAT_PYSPEAD_0_5_2, compat, sizeof(compat), 0x66);
}

/* format [('u',16)] 0x7654, data only: big-endian and immediate. */
Test(itemgroup_vectors, small_fixed)
{
    struct spc_item_group *g;
    struct spc_heap_generator *gen;
    struct spc_flavour f = {48, 0};
    cr_assert_eq(spc_item_group_create(&g), 0);
    cr_assert_eq(spc_heap_generator_create(&gen, g, &f, 0), 0);
    const struct spc_format_field fmt[] = {{'u', 16}};
    struct spc_descriptor d = {.id = 0x2345, .name = "x", .format = fmt, .n_format = 1};
    struct spc_item *it;
    cr_assert_eq(spc_item_group_add(g, &d, &it), 0);
    cr_assert_eq(spc_item_set_u64(it, 0x7654), 0);
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_generator_get_heap(gen, &heap, SPC_SELECT_NONE, SPC_SELECT_STALE), 0);
    heap_equals_section(heap, 0x123456, "small-fixed");
    spc_heap_destroy(heap);
    spc_heap_generator_destroy(gen);
    spc_item_group_destroy(g);
}

/* shape (1, None) u8 values [4, 5]: variable, so addressed. */
Test(itemgroup_vectors, small_variable)
{
    struct spc_item_group *g;
    struct spc_heap_generator *gen;
    struct spc_flavour f = {48, 0};
    cr_assert_eq(spc_item_group_create(&g), 0);
    cr_assert_eq(spc_heap_generator_create(&gen, g, &f, 0), 0);
    const struct spc_format_field fmt[] = {{'u', 8}};
    const int64_t shape[] = {1, SPC_DIM_VARIABLE};
    struct spc_descriptor d = {.id = 0x2345, .name = "x", .shape = shape, .n_dims = 2, .format = fmt, .n_format = 1};
    struct spc_item *it;
    cr_assert_eq(spc_item_group_add(g, &d, &it), 0);
    const int values[] = {4, 5};
    const size_t vshape[] = {1, 2};
    struct spc_array a = {.data = values, .type = SPC_CTYPE_I32, .n_dims = 2, .shape = vshape};
    cr_assert_eq(spc_item_set(it, &a, 0), 0, "%s", tu_item_err(it));
    cr_assert_not(spc_item_allow_immediate(it));
    struct spc_heap *heap;
    cr_assert_eq(spc_heap_generator_get_heap(gen, &heap, SPC_SELECT_NONE, SPC_SELECT_STALE), 0);
    heap_equals_section(heap, 0x123456, "small-variable");
    spc_heap_destroy(heap);
    spc_heap_generator_destroy(gen);
    spc_item_group_destroy(g);
}
