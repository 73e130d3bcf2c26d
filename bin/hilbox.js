#!/usr/bin/env node
// hilbox CLI entry: runs the TypeScript sources through tsx (no separate build step).
import { register } from 'tsx/esm/api';

register();
await import('../orchestrator/src/cli/main.ts');
