#!/usr/bin/perl

# Story: a tenant's side is a pure function of (salt, key, weight).  It is
# the same whichever of 4 workers serves the request, the same on another
# nginx instance of the fleet, and $canary_bucket is the public formula
# (MurmurHash2 of salt ":" key, * 10000 / 2^32).  A new salt reshuffles:
# it picks a different set of tenants for the same weight.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $N = 300;
my $REPEAT = 4;
my @tenants = map { "acct_$_" } 1 .. $N;

sub conf {
    my ($t, $port, $workers) = @_;

    # reuseport: the kernel spreads new connections over all workers
    $t->write_conf(<<"EOF", workers => $workers);
    canary_zone canary 4m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 50;
    }

    canary_split resalted {
        stable stable_up;
        canary canary_up;
        salt   v2;
        weight 50;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port reuseport;

        location /app {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /resalted {
            canary resalted;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
EOF
}

# one connection per request (batch => 1): no keep-alive, so that every
# request may land on another worker
sub decide_all {
    my ($t, $port, $path, $repeat) = @_;

    my @reqs = map { my $k = $_;
                     map { { path => $path, headers => ['X-Tenant-Id' => $k] } }
                     1 .. $repeat }
               @tenants;

    my $res = $t->route_many($port, \@reqs, clients => 4, batch => 1);

    my (%side, %pids, %served_by, @flips, @bad);

    for my $i (0 .. $#reqs) {
        my $k = $reqs[$i]{headers}[1];
        my $d = $res->[$i];

        push @bad, "$k: status $d->{status}, side " . ($d->{side} // '-')
                   . ", variant " . ($d->{variant} // '-')
            unless $d->{status} == 200 && defined $d->{side}
                   && $d->{side} eq $d->{variant};

        $pids{$d->{pid} // '-'}++;
        $served_by{$k}{$d->{pid} // '-'} = 1;

        my $got = join ' ', $d->{side} // '-', $d->{bucket} // '-';

        if (!defined $side{$k}) {
            $side{$k} = $got;

        } elsif ($side{$k} ne $got) {
            push @flips, "$k: '$side{$k}' then '$got' (worker $d->{pid})";
        }
    }

    is(scalar @bad, 0, "$path: every request was proxied to the side "
                       . "\$canary_variant names")
        or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);

    my $multi = grep { keys %{$served_by{$_}} > 1 } keys %served_by;

    return (\%side, \%pids, \@flips, $multi);
}


my $na = CanaryTest->new(name => 'nginx A');
my $pa = $na->port('http');
conf($na, $pa, 4);
$na->start;

my ($side_a, $pids_a, $flips_a, $multi) =
    decide_all($na, $pa, '/app', $REPEAT);

is(scalar @$flips_a, 0,
   "4 workers: each of $N tenants got the same side and bucket in all "
   . "$REPEAT requests")
    or diag(join "\n", @$flips_a[0 .. ($#$flips_a < 9 ? $#$flips_a : 9)]);

my $nworkers = keys %$pids_a;
ok($nworkers > 1, "the requests were served by $nworkers different workers "
                  . "(" . join(', ', map { "$_: $pids_a->{$_}" }
                                     sort keys %$pids_a) . ")");

ok($multi > $N / 2, "$multi of $N tenants were served by more than one "
                    . "worker, each time on the same side");

my @formula = grep {
    my ($s, $bk) = split ' ', $side_a->{$_};
    my $want = CanaryTest::bucket('', $_);
    $bk ne $want || $s ne ($want < 5000 ? 'canary' : 'stable');
} @tenants;

is(scalar @formula, 0, "\$canary_bucket and the side are the formula's "
                       . "for every tenant (no salt)")
    or diag("differ: @formula[0 .. ($#formula < 9 ? $#formula : 9)]");

my $ncanary = grep { $side_a->{$_} =~ /^canary/ } @tenants;
ok($ncanary > 0 && $ncanary < $N,
   "weight 50 puts tenants on both sides ($ncanary of $N on canary)");


# ---- another nginx of the fleet ------------------------------------------

my $nb = CanaryTest->new(name => 'nginx B');
my $pb = $nb->port('http');
conf($nb, $pb, 2);
$nb->start;

my ($side_b, undef, $flips_b) = decide_all($nb, $pb, '/app', 1);

my @differ = grep { $side_a->{$_} ne $side_b->{$_} } @tenants;

is(scalar @differ, 0, "a second nginx instance puts all $N tenants on the "
                      . "same side with the same bucket")
    or diag(join "\n", map { "$_: A '$side_a->{$_}', B '$side_b->{$_}'" }
                       @differ[0 .. ($#differ < 9 ? $#differ : 9)]);

$nb->stop;


# ---- another salt ---------------------------------------------------------

my ($side_s, undef, $flips_s) = decide_all($na, $pa, '/resalted', 2);

is(scalar @$flips_s, 0, "salted split: stable decisions across workers");

my @salt_formula = grep {
    my ($s, $bk) = split ' ', $side_s->{$_};
    $bk ne CanaryTest::bucket('v2', $_);
} @tenants;

is(scalar @salt_formula, 0,
   "salted split: \$canary_bucket is the formula over \"v2:\" . key");

my @moved = grep { (split ' ', $side_a->{$_})[0]
                   ne (split ' ', $side_s->{$_})[0] } @tenants;
my $scanary = grep { $side_s->{$_} =~ /^canary/ } @tenants;

# independent hashes at 50%: about half of the tenants change side
ok(@moved > $N * 0.3 && @moved < $N * 0.7,
   "salt v2 picks a different set of tenants at the same weight: "
   . scalar(@moved) . " of $N changed side ($scanary on canary, "
   . "$ncanary without salt)");

$na->stop;

done_testing;
