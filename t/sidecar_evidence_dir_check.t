#!/usr/bin/perl

# Story: an operator starts canary-sidecar with an --evidence-dir it
# cannot write: a file, a directory that does not exist, one without
# write permission.  The sidecar says so as it starts, naming the
# directory and why (it said nothing until the first weight change,
# which may be hours later, and the archive the operator counted on was
# not there), and runs on: the snapshots go to Redis.  A directory it can
# write, through a symlink too, draws no such line, and gets the start's
# snapshot.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'evidence-dir-check');
$s->start;

my $dir = $s->t->prefix . '/evidence';
mkdir $dir or die "$dir: $!";
mkdir "$dir/ro" or die;
chmod 0555, "$dir/ro";
open my $fh, '>', "$dir/file" or die;
close $fh;
mkdir "$dir/ok" or die;
symlink "$dir/ok", "$dir/link" or die;

my $plan = fast_plan();
$plan->{stages}[0]{hold} = '10m';

my %bad = (file => 'not a directory', missing => 'No such file',
           ro => $> == 0 ? undef : 'Permission denied');
my $n = 0;

for my $name (sort keys %bad) {
    next unless defined $bad{$name};
    my $id = 'sidecar-' . ++$n;
    $s->sidecar(plan => $plan, id => $id,
                args => ['--evidence-dir', "$dir/$name", '--once',
                         '--dry-run']);
    $s->wait_for(sub { $s->sidecar_log($id) =~ /--evidence-dir: / }, 10,
                 "$name: said at the start")
        or $s->show_log($id);
    like $s->sidecar_log($id),
        qr/--evidence-dir: \Q$dir\E\/$name: $bad{$name}/,
        "$name: naming the directory and why";
}

# writable, through a symlink: nothing said, the start's snapshot there
my $id = 'sidecar-' . ++$n;
$s->sidecar(plan => $plan, id => $id, args => ['--evidence-dir', "$dir/link"]);
$s->wait_for(sub { ($s->state_hash->{stage_name} // '') ne '' }, 30,
             'the rollout starts')
    or $s->show_log($id);
$s->wait_for(sub { my @f = glob "$dir/ok/*.json.z"; @f == 1 }, 10,
             'the start\'s snapshot in the directory behind the symlink');
unlike $s->sidecar_log($id), qr/--evidence-dir: /,
    'a directory it can write: nothing said';

$s->finish;

done_testing;
