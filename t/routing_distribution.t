#!/usr/bin/perl

# Story: a split at weight W sends W percent of distinct tenants to canary.
#
# The share is counted over 100,000 tenants with the harness's own
# implementation of the public bucket formula (MurmurHash2 of salt ":" key,
# bucket = hash * 10000 / 2^32, canary when bucket < W * 100).  Then the
# tenants go through nginx (all 100,000 at 5 and 0.5, a sample at 0 and
# 100), which must put every one of them on exactly the side, and report
# exactly the $canary_bucket, that the formula predicts.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $SALT = 'v1.2.3';
my $N = 100_000;

my @tenants = map { sprintf 'tenant-%06d', $_ } 1 .. $N;
my @buckets = map { CanaryTest::bucket($SALT, $_) } @tenants;

# weight => [allowed canary share in percent, low, high]; the formula
# alone decides 0 and 100 (no bucket is < 0, every one is < 10000):
# nginx is checked at those below, not the formula against itself
my %share = (
    '5'   => [4.7, 5.3],
    '0.5' => [0.4, 0.6],
);

for my $w (sort { $a <=> $b } keys %share) {
    my $limit = int($w * 100 + 0.5);
    my $n = grep { $_ < $limit } @buckets;
    my $pct = 100 * $n / $N;

    my ($lo, $hi) = @{$share{$w}};

    ok($pct >= $lo && $pct <= $hi,
       "weight $w: $n of $N distinct tenants on canary ($pct%), "
       . "within $lo..$hi%");
}

my %seen;
my $all_buckets = grep { !$seen{$_}++ } @buckets;
ok($all_buckets > 9990, "the tenants cover the bucket range "
                        . "($all_buckets of 10000 buckets used)");


# ---- the same through nginx ------------------------------------------------

my $t = CanaryTest->new;
my $port = $t->port('http');

my %loc = ('5' => 'w5', '0.5' => 'w0_5', '0' => 'w0', '100' => 'w100');

# splits for the edges only
my %edge = (%loc, '0.01' => 'w0_01', '12.25' => 'w12_25',
            '50' => 'w50', '99.99' => 'w99_99');

my $splits = '';
my $locations = '';

for my $w (sort keys %edge) {
    my $name = $edge{$w};

    $splits .= <<"EOF";
    canary_split $name {
        stable stable_up;
        canary canary_up;
        salt   $SALT;
        weight $w;
    }

EOF

    $locations .= <<"EOF";
        location /$name {
            canary $name;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

EOF
}

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

$splits
${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

$locations
    }
EOF

$t->start;

# every 50th tenant, plus the first 100 canary tenants at 5 and at 0.5 so
# that the rare side is well represented in the sample
my @sample = map { $_ * 50 } 0 .. $N / 50 - 1;

for my $limit (500, 50) {
    my $n = 0;
    for my $i (0 .. $N - 1) {
        next unless $buckets[$i] < $limit;
        push @sample, $i;
        last if ++$n == 100;
    }
}

my %u;
@sample = grep { !$u{$_}++ } @sample;

my @everyone = 0 .. $N - 1;

for my $w (sort { $a <=> $b } keys %loc) {
    my $path = "/$loc{$w}";
    my $limit = int($w * 100 + 0.5);

    # at 5 and 0.5 all 100,000 tenants go through nginx; 0 and 100 are
    # exact by construction, a sample shows it
    my @sample = ($w == 5 || $w == 0.5) ? @everyone : @sample;

    my @reqs = map { { path => $path,
                       headers => ['X-Tenant-Id' => $tenants[$_]] } }
               @sample;

    my $res = $t->route_many($port, \@reqs, clients => 2);

    my (@wrong, $canary);

    for my $j (0 .. $#sample) {
        my $i = $sample[$j];
        my $d = $res->[$j];
        my $want = $buckets[$i] < $limit ? 'canary' : 'stable';

        $canary++ if $want eq 'canary';

        push @wrong, "$tenants[$i]: expected $want bucket $buckets[$i], got "
                     . join(' ', map { "$_=" . ($d->{$_} // '-') }
                                 qw(status side variant bucket reason
                                    weight upstream))
            unless $d->{status} == 200
                   && $d->{side} eq $want
                   && $d->{variant} eq $want
                   && $d->{upstream} eq "${want}_up"
                   && $d->{reason} eq 'hash'
                   && $d->{weight} eq $w
                   && defined $d->{bucket} && $d->{bucket} eq $buckets[$i];
    }

    if (@sample == $N) {
        my $pct = 100 * ($canary || 0) / $N;
        my ($lo, $hi) = @{$share{$w}};
        my $nginx = grep { $_->{side} eq 'canary' } @$res;

        ok($nginx == ($canary || 0) && $pct >= $lo && $pct <= $hi,
           "weight $w through nginx: $nginx of $N distinct tenants on "
           . "canary ($pct%), within $lo..$hi%");
    }

    is(scalar @wrong, 0,
       "weight $w through nginx: all " . @sample . " tenants "
       . "(" . ($canary || 0) . " of them canary) went to the side and had "
       . "the \$canary_bucket the formula predicts")
        or diag(join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]);
}


# ---- the edges: bucket limit - 1 is canary, bucket limit is stable --------

my %first_in;
for my $i (0 .. $N - 1) {
    $first_in{$buckets[$i]} //= $i;
}

my (@edge_reqs, @edge_want);

for my $w (sort { $a <=> $b } keys %edge) {
    my $limit = int($w * 100 + 0.5);

    for my $b ($limit - 1, $limit) {
        next if $b < 0 || $b > 9999;

        my $i = $first_in{$b};
        next unless defined $i;

        push @edge_reqs, { path => "/$edge{$w}",
                           headers => ['X-Tenant-Id' => $tenants[$i]] };
        push @edge_want, [$w, $tenants[$i], $b,
                          $b < $limit ? 'canary' : 'stable'];
    }
}

my $edge_res = $t->route_many($port, \@edge_reqs, clients => 1);

for my $j (0 .. $#edge_want) {
    my ($w, $tenant, $b, $want) = @{$edge_want[$j]};
    my $d = $edge_res->[$j];

    ok($d->{side} eq $want && $d->{bucket} eq $b,
       "weight $w: $tenant in bucket $b goes to $want")
        or diag("got side " . ($d->{side} // '-') . " bucket "
                . ($d->{bucket} // '-'));
}

$t->stop;

done_testing;
