#!/usr/bin/perl

# Story: besides the tenant hash, a request can be steered by override
# headers, a cookie and its cohort, in this order of precedence:
#
#     override headers (first matching override in config order wins)
#     -> cookie (NAME=always / NAME=never)
#     -> cohort weight -> split weight.
#
# Header names match case-insensitively, values exactly; an override with
# from= counts only from a trusted client address (we connect from
# 127.0.0.1, untrusted, and bind the client socket to 127.0.0.2 or to
# addresses inside and outside a 127.0.0.4/30 range).  A request without a
# key gets a random draw at the weight.  Several splits live in one nginx,
# several locations share a split, "canary off" disables an inherited one,
# and $canary_weight prints weights as they were written.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $direct_stable = $t->port('origin:stable_up');
my $direct_canary = $t->port('origin:canary_up');

# the same rules on a split at weight 0 (hash says stable) and one at 100
my $rules = <<'EOF';
        override X-Canary-Opt-In   true  canary;
        override X-Summit-Employee true  canary from=10.0.0.0/8 from=127.0.0.2;
        override X-Canary          never stable;
        override X-Office          yes   canary from=127.0.0.4/30;
        cookie   canary;
        cohort   $http_x_cohort;
        cohort_weight internal 100;
        cohort_weight beta     25;
        cohort_weight holdout  0;
EOF

my %formats = (
    f5 => '5', f0_5 => '0.5', f12_25 => '12.25', f100 => '100', f0 => '0',
    f0_05 => '0.05', f10_50 => '10.50', f100_00 => '100.00', f7_0 => '7.0',
    f99_99 => '99.99', f3_1 => '3.1',
);

my $format_splits = join '', map { <<"EOF" } sort keys %formats;
    canary_split $_ {
        stable stable_up;
        canary canary_up;
        weight $formats{$_};
    }
EOF

my $format_locations = join '', map { <<"EOF" } sort keys %formats;
        location = /fmt/$_ {
            canary $_;
            add_header X-Canary-Weight \$canary_weight always;
            return 200 "fmt\\n";
        }
EOF

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 10m;

    canary_split w0 {
        stable stable_up;
        canary canary_up;
        weight 0;
$rules
    }

    canary_split w100 {
        stable stable_up;
        canary canary_up;
        weight 100;
$rules
    }

    canary_split w50 {
        stable stable_up;
        canary canary_up;
        weight 50;
    }

    # another split with its own upstreams and key
    canary_split by_arg {
        stable b_stable;
        canary b_canary;
        key    \$arg_tenant;
        salt   b;
        weight 50;
    }

    # a key made of two headers
    canary_split composite {
        stable stable_up;
        canary canary_up;
        key    "\$http_x_org/\$http_x_user";
        weight 50;
    }

    # upstreams given as host:port instead of upstream blocks
    canary_split direct {
        stable 127.0.0.1:$direct_stable;
        canary 127.0.0.1:$direct_canary;
        weight 100;
    }

$format_splits
${\ $t->origins }
${\ $t->origins(stable => 'b_stable', canary => 'b_canary') }
    server {
        listen 127.0.0.1:$port;

        # inherited by the locations that say nothing
        canary w50;

        location / {
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /also-w50 {
            canary w50;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /w50 {
            canary w50;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /w0 {
            canary w0;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /w100 {
            canary w100;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /arg {
            canary by_arg;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /composite {
            canary composite;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        # the key variable set before the split decides: the set value counts
        location /keyset {
            set \$http_x_tenant_id "fixed-tenant";
            canary w50;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /direct {
            canary direct;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /off {
            canary off;
${\ CanaryTest::expose_vars() }
            return 200 "none\\n";
        }

$format_locations
    }
EOF

$t->start;

my $TENANT = 'tenant-override';

# one request; headers are [name => value, ...] sent in this order
sub one {
    my ($path, $headers, $from) = @_;

    my $req = { path => $path, headers => $headers };
    $req->{local_address} = $from if $from;

    return $t->route_many($port, [$req], clients => 1)->[0];
}

sub show {
    my ($d) = @_;
    return join ' ', map { "$_=" . ($d->{$_} // '-') }
                     qw(status side variant reason bucket weight);
}

# expect: side, reason, weight; bucket is checked too: the formula's when
# hashed, absent when not
sub check {
    my ($name, $path, $headers, $side, $reason, $weight, %o) = @_;

    my $d = one($path, $headers, $o{from});
    my ($key) = map { $headers->[$_ + 1] } grep { $_ % 2 == 0
        && lc $headers->[$_] eq 'x-tenant-id' } 0 .. $#$headers;

    my $bucket = ($reason eq 'hash' || $reason eq 'cohort')
                 ? CanaryTest::bucket('', $key) : undef;

    my $ok = $d->{status} == 200
             && $d->{side} eq $side
             && $d->{variant} eq $side
             && $d->{reason} eq $reason
             && $d->{weight} eq $weight
             && (defined $bucket ? defined $d->{bucket}
                                   && $d->{bucket} eq $bucket
                                 : !defined $d->{bucket});

    ok($ok, "$name: $side by $reason")
        or diag("got " . show($d) . "; want bucket "
                . ($bucket // 'none'));
}

my @T = ('X-Tenant-Id' => $TENANT);


# ---- the hash alone --------------------------------------------------------

check('no override, weight 0', '/w0', [@T], 'stable', 'hash', '0');
check('no override, weight 100', '/w100', [@T], 'canary', 'hash', '100');


# ---- override headers ------------------------------------------------------

check('opt-in header', '/w0', [@T, 'X-Canary-Opt-In' => 'true'],
      'canary', 'header', '0');
check('opt-in header name in lowercase', '/w0',
      [@T, 'x-canary-opt-in' => 'true'], 'canary', 'header', '0');
check('opt-in header name in uppercase', '/w0',
      [@T, 'X-CANARY-OPT-IN' => 'true'], 'canary', 'header', '0');

for my $v ('True', 'TRUE', 'truex', 'tru', 'yes', '1', 'true,true', '') {
    check("opt-in header with value '$v' (values are exact)", '/w0',
          [@T, 'X-Canary-Opt-In' => $v], 'stable', 'hash', '0');
}

check('"never" header', '/w100', [@T, 'X-Canary' => 'never'],
      'stable', 'header', '100');
check('"never" header, name in lowercase', '/w100',
      [@T, 'x-canary' => 'never'], 'stable', 'header', '100');
check('"NEVER" is not "never"', '/w100', [@T, 'X-Canary' => 'NEVER'],
      'canary', 'hash', '100');
check('a header whose name only starts like an override', '/w0',
      [@T, 'X-Canary-Opt-In-Extra' => 'true'], 'stable', 'hash', '0');


# ---- from= trusted sources --------------------------------------------------

check('employee header from an untrusted address (127.0.0.1)', '/w0',
      [@T, 'X-Summit-Employee' => 'true'], 'stable', 'hash', '0');
check('employee header from a trusted address (127.0.0.2)', '/w0',
      [@T, 'X-Summit-Employee' => 'true'], 'canary', 'header', '0',
      from => '127.0.0.2');
check('employee header, name in lowercase, trusted', '/w0',
      [@T, 'x-summit-employee' => 'true'], 'canary', 'header', '0',
      from => '127.0.0.2');
check('employee header, wrong value, trusted', '/w0',
      [@T, 'X-Summit-Employee' => 'yes'], 'stable', 'hash', '0',
      from => '127.0.0.2');
check('office header from 127.0.0.5, inside 127.0.0.4/30', '/w0',
      [@T, 'X-Office' => 'yes'], 'canary', 'header', '0',
      from => '127.0.0.5');
check('office header from 127.0.0.7, inside 127.0.0.4/30', '/w0',
      [@T, 'X-Office' => 'yes'], 'canary', 'header', '0',
      from => '127.0.0.7');
check('office header from 127.0.0.8, outside 127.0.0.4/30', '/w0',
      [@T, 'X-Office' => 'yes'], 'stable', 'hash', '0',
      from => '127.0.0.8');
check('office header from 127.0.0.2, trusted by another override only',
      '/w0', [@T, 'X-Office' => 'yes'], 'stable', 'hash', '0',
      from => '127.0.0.2');
check('opt-in (no from=) from 127.0.0.2 as well', '/w0',
      [@T, 'X-Canary-Opt-In' => 'true'], 'canary', 'header', '0',
      from => '127.0.0.2');


# ---- precedence among overrides: configuration order, not header order ------

check('opt-in before never in the config, never sent first', '/w0',
      [@T, 'X-Canary' => 'never', 'X-Canary-Opt-In' => 'true'],
      'canary', 'header', '0');
check('opt-in before never in the config, opt-in sent first', '/w0',
      [@T, 'X-Canary-Opt-In' => 'true', 'X-Canary' => 'never'],
      'canary', 'header', '0');
check('trusted employee before never in the config', '/w100',
      [@T, 'X-Canary' => 'never', 'X-Summit-Employee' => 'true'],
      'canary', 'header', '100', from => '127.0.0.2');
check('untrusted employee is skipped, never applies', '/w100',
      [@T, 'X-Canary' => 'never', 'X-Summit-Employee' => 'true'],
      'stable', 'header', '100');
check('a non-matching opt-in value does not hide never', '/w100',
      [@T, 'X-Canary-Opt-In' => 'false', 'X-Canary' => 'never'],
      'stable', 'header', '100');


# ---- overrides beat cookie and cohort --------------------------------------

check('override beats cookie always', '/w0',
      [@T, 'Cookie' => 'canary=always', 'X-Canary' => 'never'],
      'stable', 'header', '0');
check('override beats cookie never', '/w100',
      [@T, 'Cookie' => 'canary=never', 'X-Canary-Opt-In' => 'true'],
      'canary', 'header', '100');
check('override beats cohort', '/w0',
      [@T, 'X-Cohort' => 'internal', 'X-Canary' => 'never'],
      'stable', 'header', '0');


# ---- cookie ----------------------------------------------------------------

check('cookie canary=always', '/w0', [@T, 'Cookie' => 'canary=always'],
      'canary', 'cookie', '0');
check('cookie canary=never', '/w100', [@T, 'Cookie' => 'canary=never'],
      'stable', 'cookie', '100');
check('cookie among others', '/w0',
      [@T, 'Cookie' => 'session=abc; canary=always; theme=dark'],
      'canary', 'cookie', '0');
check('cookie in the second Cookie header', '/w0',
      [@T, 'Cookie' => 'session=abc', 'Cookie' => 'canary=always'],
      'canary', 'cookie', '0');
check('cookie value in double quotes', '/w0',
      [@T, 'Cookie' => 'canary="always"'], 'canary', 'cookie', '0');

for my $c ('canary=maybe', 'canary=ALWAYS', 'canary=', 'canary',
           'xcanary=always', 'canary_x=always', 'canar=always',
           'canary=always2', 'canary=neverr')
{
    check("garbage cookie '$c' on weight 0 is ignored", '/w0',
          [@T, 'Cookie' => $c], 'stable', 'hash', '0');
    check("garbage cookie '$c' on weight 100 is ignored", '/w100',
          [@T, 'Cookie' => $c], 'canary', 'hash', '100');
}

check('cookie beats cohort (never vs internal 100)', '/w0',
      [@T, 'Cookie' => 'canary=never', 'X-Cohort' => 'internal'],
      'stable', 'cookie', '0');
check('cookie beats cohort (always vs holdout 0)', '/w100',
      [@T, 'Cookie' => 'canary=always', 'X-Cohort' => 'holdout'],
      'canary', 'cookie', '100');


# ---- cohort weight -----------------------------------------------------------

check('cohort internal at 100 on a split at 0', '/w0',
      [@T, 'X-Cohort' => 'internal'], 'canary', 'cohort', '100');
check('cohort holdout at 0 on a split at 100', '/w100',
      [@T, 'X-Cohort' => 'holdout'], 'stable', 'cohort', '0');
check('unknown cohort uses the split weight', '/w0',
      [@T, 'X-Cohort' => 'nobody'], 'stable', 'hash', '0');
check('empty cohort uses the split weight', '/w100',
      [@T, 'X-Cohort' => ''], 'canary', 'hash', '100');

# beta is 25%: the tenant's bucket decides within the cohort
my @beta = map { "beta-$_" } 1 .. 99;
my ($low) = grep { CanaryTest::bucket('', $_) < 2500 } @beta;
my ($high) = grep { CanaryTest::bucket('', $_) >= 2500 } @beta;

check("cohort beta 25, tenant $low in bucket "
      . CanaryTest::bucket('', $low), '/w0',
      ['X-Tenant-Id' => $low, 'X-Cohort' => 'beta'],
      'canary', 'cohort', '25');
check("cohort beta 25, tenant $high in bucket "
      . CanaryTest::bucket('', $high), '/w100',
      ['X-Tenant-Id' => $high, 'X-Cohort' => 'beta'],
      'stable', 'cohort', '25');


# ---- empty key: a random draw at the weight --------------------------------

check('no key, weight 0', '/w0', [], 'stable', 'random', '0');
check('no key, weight 100', '/w100', [], 'canary', 'random', '100');
check('empty key, weight 0', '/w0', ['X-Tenant-Id' => ''],
      'stable', 'random', '0');
check('no key, cohort internal: random at the cohort weight 100', '/w0',
      ['X-Cohort' => 'internal'], 'canary', 'random', '100');
check('no key, cohort holdout: random at the cohort weight 0', '/w100',
      ['X-Cohort' => 'holdout'], 'stable', 'random', '0');
check('no key, but an override', '/w0', ['X-Canary-Opt-In' => 'true'],
      'canary', 'header', '0');

{
    my $res = $t->route_many($port, [ map { { path => '/w50' } } 1 .. 400 ]);
    my %side;
    my @bad = grep { $_->{reason} ne 'random' || defined $_->{bucket}
                     || $_->{side} ne $_->{variant} } @$res;
    $side{$_->{side}}++ for @$res;

    is(scalar @bad, 0, 'no key at weight 50: every decision is random, '
                       . 'without a bucket');
    ok(($side{canary} || 0) > 120 && ($side{stable} || 0) > 120,
       "no key at weight 50: both sides drawn (canary "
       . ($side{canary} || 0) . ", stable " . ($side{stable} || 0) . ")");
}


# ---- splits, locations, inheritance, canary off ----------------------------

{
    my @keys = map { "shared-$_" } 1 .. 60;
    my %paths;

    for my $path ('/w50', '/also-w50', '/') {
        my $res = $t->route_many($port,
            [ map { { path => $path, headers => ['X-Tenant-Id' => $_] } }
              @keys ]);
        $paths{$path} = [ map { "$_->{side} $_->{bucket}" } @$res ];
    }

    is_deeply($paths{'/also-w50'}, $paths{'/w50'},
              'two locations naming one split decide alike');
    is_deeply($paths{'/'}, $paths{'/w50'},
              'a location inheriting the server\'s split decides like the '
              . 'locations naming it');

    my @formula = map { my $b = CanaryTest::bucket('', $_);
                        ($b < 5000 ? 'canary' : 'stable') . " $b" } @keys;
    is_deeply($paths{'/w50'}, \@formula, 'and as the formula says');
}

{
    my $res = $t->get($port, '/off', { 'X-Tenant-Id' => $TENANT,
                                       'X-Canary-Opt-In' => 'true' });
    is($res->{status}, 200, 'canary off: the location still answers');
    is($res->{content}, "none\n", 'canary off: with its own content');

    my @vars = grep { /^x-canary-/ } keys %{$res->{headers}};
    is("@vars", '', 'canary off: no $canary_* variable has a value');
}

{
    my @keys = map { "arg-$_" } 1 .. 40;
    my $res = $t->route_many($port,
        [ map { { path => "/arg?tenant=$_",
                  headers => ['X-Tenant-Id' => 'ignored'] } } @keys ]);

    my @bad;

    for my $i (0 .. $#keys) {
        my $d = $res->[$i];
        my $b = CanaryTest::bucket('b', $keys[$i]);
        my $want = $b < 5000 ? 'canary' : 'stable';

        push @bad, "$keys[$i]: " . show($d) . " origin "
                   . ($d->{origin} // '-') . "; want $want $b"
            unless $d->{side} eq $want && $d->{bucket} eq $b
                   && $d->{origin} eq "b_$want"
                   && $d->{upstream} eq "b_$want";
    }

    is(scalar @bad, 0, 'a second split with its own key ($arg_tenant), '
                       . 'salt and upstreams routes by its own formula')
        or diag(join "\n", @bad);

    my %sides = map { $_->{side} => 1 } @$res;
    ok($sides{canary} && $sides{stable}, 'to both of its upstreams');
}

{
    my @pairs = map { ["org$_", "user" . ($_ * 7)] } 1 .. 40;
    my $res = $t->route_many($port,
        [ map { { path => '/composite',
                  headers => ['X-Org' => $_->[0], 'X-User' => $_->[1]] } }
          @pairs ]);

    my @bad = grep {
        my $b = CanaryTest::bucket('', "$pairs[$_][0]/$pairs[$_][1]");
        $res->[$_]{bucket} ne $b
            || $res->[$_]{side} ne ($b < 5000 ? 'canary' : 'stable');
    } 0 .. $#pairs;

    is(scalar @bad, 0, 'a key of two headers "$http_x_org/$http_x_user" '
                       . 'hashes the joined value');
}

{
    my $want = CanaryTest::bucket('', 'fixed-tenant');
    my @bad;

    for my $tenant ('a', 'b', 'tenant-override', '') {
        my $d = one('/keyset', [$tenant eq '' ? () : ('X-Tenant-Id' => $tenant)]);
        push @bad, "$tenant: " . show($d) if $d->{bucket} ne $want;
    }

    is(scalar @bad, 0, 'a key variable "set" in the location hashes the '
                       . 'value set, not the request header')
        or diag(join "\n", @bad);

    my $b = CanaryTest::bucket('', 'Case-Tenant');
    my @got = map { one('/w50', [$_ => 'Case-Tenant'])->{bucket} }
              'X-Tenant-Id', 'x-tenant-id', 'X-TENANT-ID';

    is_deeply(\@got, [$b, $b, $b],
              'the key header is found whatever its case');
}

{
    my $d = one('/direct', [@T]);

    is($d->{side}, 'canary', 'host:port upstreams: proxied to canary');
    is($d->{upstream}, "127.0.0.1:$direct_canary",
       'host:port upstreams: $canary_upstream is the address');
}


# ---- $canary_weight formatting ---------------------------------------------

my %printed = (
    f5 => '5', f0_5 => '0.5', f12_25 => '12.25', f100 => '100', f0 => '0',
    f0_05 => '0.05', f10_50 => '10.5', f100_00 => '100', f7_0 => '7',
    f99_99 => '99.99', f3_1 => '3.1',
);

for my $s (sort keys %printed) {
    my $res = $t->get($port, "/fmt/$s", { 'X-Tenant-Id' => $TENANT });

    is($res->{headers}{'x-canary-weight'}, $printed{$s},
       "weight $formats{$s} prints as \$canary_weight '$printed{$s}'");
}

$t->stop;

done_testing;
