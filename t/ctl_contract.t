#!/usr/bin/perl

# Story: the Redis contract and the limits are written once, in
# src/core/ngx_http_canary_contract.h and ngx_http_canary_limits.h; the
# module, canary-sidecar and the fuzzers include them.  canary-ctl (bash
# and Lua) cannot: this test reads the headers and canary-ctl and fails
# when they differ.
#
#   each name of the header that canary-ctl deals in (keys, hash fields,
#   states, receipt fields, operations, sides) is in canary-ctl;
#   each key, hash field, state, receipt field and operation canary-ctl
#   writes (or checks) is one of the header's;
#   canary-ctl's limits (split name, tenant, prefix, weight) are the
#   header's, and so is what it takes of a node's record (its version,
#   histogram layout, longest size and ttl in intervals).
#
# No Redis, no nginx: it reads files.

use strict;
use warnings;

use FindBin;
use Test::More;

my $ROOT = "$FindBin::Bin/..";

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

my $ctl = slurp("$ROOT/scripts/canary-ctl");
my $contract = slurp("$ROOT/src/core/ngx_http_canary_contract.h");
my $limits = slurp("$ROOT/src/core/ngx_http_canary_limits.h");

my %macro = $contract =~ /^#define\s+(NGX_HTTP_CANARY_\w+)\s+"([^"]*)"/mg;
my %limit = $limits =~ /^#define\s+(NGX_HTTP_CANARY_\w+)\s+(\d+)/mg;
my %number = $contract =~ /^#define\s+(NGX_HTTP_CANARY_\w+)\s+(\d+)/mg;

cmp_ok scalar(keys %macro), '>=', 40, 'the contract header has its names';
ok $limit{NGX_HTTP_CANARY_NAME_LEN}, 'the limits header has its limits';

# the header's values by kind
my %kind;
for my $m (keys %macro) {
    my ($k) = $m =~ /^NGX_HTTP_CANARY_(KEY|FIELD|STATE|RECEIPT|OP|SIDE)/;
    $k //= 'OTHER';
    $kind{$k}{$macro{$m}} = $m;
}

# what canary-ctl has no business with, and why
my %NOT_CTL = (
    NGX_HTTP_CANARY_KEY_LEADER => 'the lease of canary-sidecar',
    NGX_HTTP_CANARY_KEY_EVIDENCE_INDEX => 'the sidecar\'s index of its '
                                          . 'evidence snapshots',
    NGX_HTTP_CANARY_GUARD_WRITER => 'the guard\'s updated_by (canary-ctl '
                                    . 'goes by the state)',
    NGX_HTTP_CANARY_STATE_AWAITING => 'written by the sidecar only',
    NGX_HTTP_CANARY_STATE_HALTED => 'written by the sidecar only',
    NGX_HTTP_CANARY_STATE_COMPLETE => 'written by the sidecar only',
    map { ("NGX_HTTP_CANARY_OP_$_" => 'an operation of the sidecar') }
        qw(STARTED CANARY_DONE PROMOTED AWAITING COMPLETE VIOLATION HALTED
           HALT_CLEARED ROLLBACK_STEP),
);

for my $m (sort keys %NOT_CTL) {
    ok exists $macro{$m}, "$m (not canary-ctl's: $NOT_CTL{$m}) is in the "
                          . 'header';
}

# ---- the header's names are canary-ctl's ----------------------------------

for my $m (sort keys %macro) {
    next if $NOT_CTL{$m};

    my $v = $macro{$m};
    my $found = $m =~ /_KEY_/
                ? index($ctl, "\$key$v") >= 0 || index($ctl, "\$1$v") >= 0
                : $ctl =~ /(?<![\w.])\Q$v\E(?![\w])/;

    ok $found, "$m \"$v\" is in canary-ctl";
}

# ---- what canary-ctl writes is the header's -------------------------------

# continuation lines joined
(my $flat = $ctl) =~ s/\\\n\s*/ /g;

my %seen;

# keys: "$key:..." and "$PREFIX$1:..." (a node's record: "$key:node:",
# its name follows)
for my $suffix ($flat =~ /\$(?:key|PREFIX\$1)((?::[a-z]+)+:?)/g) {
    next if $seen{key}{$suffix}++;
    ok $kind{KEY}{$suffix}, "canary-ctl's key suffix \"$suffix\" is the "
                            . "header's";
}
cmp_ok scalar(keys %{$seen{key}}), '>=', 5, 'canary-ctl names its keys';

# the values "$op" and "$s" may take
my %var;
for my $name (qw(op s)) {
    $var{$name} = [ $flat =~ /(?:^|\s)$name=(\w+)/mg ];
}

sub values_of {
    my ($word) = @_;
    return $word =~ /^"?\$(\w+)"?$/ ? @{$var{$1} || []} : ($word);
}

# change SPLIT OP PINS REFUSE FIELD VALUE ... -- NAME KIND VALUE ... [--]
my $changes = 0;
my %ops;

for my $call ($flat =~ /^\s*change ("\$\w+" .*)$/mg) {
    my @w = split ' ', $call;
    my (undef, $op) = @w;
    my $i = 4;
    my (@fields, @extra);

    push @fields, [ @w[$i, $i + 1] ] and $i += 2
        while $i + 1 < @w && $w[$i] ne '--';
    $i++;
    while ($i < @w && $w[$i] ne '--') {
        # ${REASON[@]+"${REASON[@]}"}: the reason's three words, below
        if ($w[$i] =~ /REASON/) {
            $i++;
            next;
        }

        push @extra, $w[$i];
        $i += 3;
    }

    $changes++;

    for my $o (values_of($op)) {
        $ops{$o}++;
        ok $kind{OP}{$o}, "canary-ctl's operation \"$o\" is the header's";
    }

    for my $f (@fields) {
        my ($field, $value) = @$f;

        # a cohort's weight: the header's prefix, then the cohort's name
        $field = $1 if $field =~ /^"([\w]+\.)\$\d+"$/;

        ok $kind{FIELD}{$field}, "canary-ctl's hash field \"$field\" "
                                 . 'is the header\'s';

        next unless $field eq 'state';

        for my $v (values_of($value)) {
            ok $kind{STATE}{$v}, "canary-ctl's state \"$v\" is the header's";
        }
    }

    for my $e (@extra) {
        ok $kind{RECEIPT}{$e} || $kind{FIELD}{$e},
            "canary-ctl's receipt field \"$e\" is the header's";
    }
}

is $changes, 9, 'canary-ctl calls change() in nine places';
is scalar(keys %ops), 11, 'for its eleven operations: ' . join ', ', sort keys
    %ops;

# the reason, added to a receipt in REASON=(reason s TEXT)
my ($reason) = $flat =~ /REASON=\((\w+) s /;
ok $reason && $kind{RECEIPT}{$reason}, 'canary-ctl\'s receipt field '
                                       . "\"$reason\" is the header's";

# the Lua of a change: the fields it reads and writes, the states it
# refuses, the receipt's entries
my ($lua) = $ctl =~ /^CHANGE_LUA='(.*?)^'/ms;
ok $lua, 'found the Lua of a change';

my ($hmget) = $lua =~ /"HMGET", KEYS\[1\], ([^)]*)\)/;
my @lua_fields = (($hmget // '') =~ /"(\w+)"/g,
                  $lua =~ /"HINCRBY", KEYS\[1\], "(\w+)"/g,
                  $lua =~ /hset\[#hset \+ 1\] = "(\w+)"/g);
cmp_ok scalar(@lua_fields), '>=', 6, 'the Lua reads and writes hash fields';

for my $f (@lua_fields) {
    ok $kind{FIELD}{$f}, "the Lua's hash field \"$f\" is the header's";
}

my @lua_states = $lua =~ /state == "(\w+)"/g;
is scalar(@lua_states), 2, 'the Lua refuses two states';
for my $st (@lua_states) {
    ok $kind{STATE}{$st}, "the Lua's state \"$st\" is the header's";
}

my %json = map { $_ => 1 } $lua =~ /\\"(\w+)\\":/g;
cmp_ok scalar(keys %json), '>=', 10, 'the Lua writes receipt entries';
for my $e (sort keys %json) {
    ok $kind{RECEIPT}{$e} || $kind{FIELD}{$e} || $kind{SIDE}{$e},
        "the Lua's receipt entry \"$e\" is the header's";
}

my ($stream) = $lua =~ /"XADD", KEYS\[2\],.*?"\*", "(\w+)"/s;
is $stream, $macro{NGX_HTTP_CANARY_RECEIPT},
    'the receipt goes into the stream entry\'s field as the header says';

my ($clen, $cname) = $lua =~ /string\.sub\(h\[i\], 1, (\d+)\) == "([\w.]+)"/;
is $cname, $macro{NGX_HTTP_CANARY_FIELD_COHORT},
    'a cohort\'s weight field as the header says';
is $clen, length($macro{NGX_HTTP_CANARY_FIELD_COHORT} // ''),
    'and its length';

# ---- limits ---------------------------------------------------------------

my ($split_max) = $ctl =~ /valid_split\(\)\ \{\s*\[\[\ "\$1"\ =~
                            \ \^\[[^\]]+\]\{1,(\d+)\}/x;
is $split_max, $limit{NGX_HTTP_CANARY_NAME_LEN} - 1,
    'a split name: 1 to NAME_LEN - 1 bytes, as the header says';

my ($cohort_max) = $ctl =~ /valid_cohort\(\) \{\s*\[\[ "\$1" =~ \^\[!-~\]\{1,(\d+)\}/;
is $cohort_max, $limit{NGX_HTTP_CANARY_NAME_LEN} - 1,
    'a cohort name: 1 to NAME_LEN - 1 bytes, as the header says';

my ($tenant_max) = $ctl =~ /valid_tenants\(\) \{.*?-le (\d+) \]/s;
is $tenant_max, $limit{NGX_HTTP_CANARY_PIN_KEY_MAX},
    'a tenant: 1 to PIN_KEY_MAX bytes';

my ($prefix_max) = $ctl =~ /"\$PREFIX" =~ \^\[!-~\]\{1,(\d+)\}/;
is $prefix_max, $limit{NGX_HTTP_CANARY_PREFIX_LEN},
    'a prefix: 1 to PREFIX_LEN bytes';

my ($weight_max) = $ctl =~ /\(\( 10#\$int > (\d+) \)\)/;
is $weight_max * 100, $limit{NGX_HTTP_CANARY_WEIGHT_MAX},
    'a weight: up to WEIGHT_MAX hundredths';

# ---- a node's record -------------------------------------------------------

my %node = $ctl =~ /^(NODE_\w+)=(\S+)$/mg;

is $node{NODE_VERSION}, $number{NGX_HTTP_CANARY_NODE_VERSION},
    'a node record\'s version, as the header says';
is $node{NODE_HIST}, $macro{NGX_HTTP_CANARY_NODE_HIST},
    'its histogram layout';
is $node{NODE_RECORD_MAX}, $limit{NGX_HTTP_CANARY_NODE_RECORD_MAX},
    'the longest record read: NODE_RECORD_MAX bytes';
is $node{NODE_TTL_INTERVALS}, $limit{NGX_HTTP_CANARY_NODE_TTL_INTERVALS},
    'its ttl in intervals: NODE_TTL_INTERVALS';

# the fleet's Lua: the generation it compares with, and the record's
# fields it reads
my ($fleet) = $ctl =~ /^FLEET_LUA='(.*?)^'/ms;
ok $fleet, 'found the Lua of fleet';

my ($hget) = ($fleet // '') =~ /"HGET", KEYS\[1\], "(\w+)"/;
is $hget, $macro{NGX_HTTP_CANARY_FIELD_GENERATION},
    'fleet compares with the hash\'s generation';

my %read = map { $_ => 1 } ($fleet // '') =~ /\br\.(\w+)\b/g;
for my $f (sort keys %read) {
    like $contract, qr/"\Q$f\E":/, "fleet's record field \"$f\" is the "
                                     . 'header\'s record';
}
cmp_ok scalar(keys %read), '>=', 8, 'fleet reads the record\'s fields';

for my $f (qw(window_s window_requests)) {
    like $fleet // '', qr/\.\Q$f\E\b/, "fleet reads each side's $f";
    like $contract, qr/"\Q$f\E":/, "which the header's record has";
}

done_testing;
