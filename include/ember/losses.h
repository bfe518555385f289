#pragma once
// ember::losses — the standard losses and the five paper losses.
#include "ember/losses/reduction.h"
#include "ember/losses/standard.h"
#include "ember/losses/margin.h"
#include "ember/losses/pld.h"
#include "ember/losses/opl.h"
#include "ember/losses/tri_bce.h"
#include "ember/losses/anyloss.h"
#include "ember/losses/cce.h"
